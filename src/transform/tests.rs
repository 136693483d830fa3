use std::path::Path;

use super::synthetic::anisotropic_gaussian;
use super::test_support::encoder;
use super::*;
use crate::progress::Silent;

fn small_flow_config() -> FlowConfig {
    FlowConfig { levels: 2, steps_per_level: 2, width: 8, ..FlowConfig::default() }
}

#[test]
fn load_detects_the_kind_and_keeps_id_and_outputs() {
    let data = anisotropic_gaussian(400, 12, 12, 1);
    let dir = tempfile::tempdir().unwrap();
    let transforms: Vec<Transform> = vec![
        fit_whitening(&data, &encoder("mean"), None).unwrap().into(),
        fit_whitening(&data, &encoder("mean"), Some(4)).unwrap().into(),
        fit_flow(&data, &encoder("mean"), &small_flow_config(), &Silent).unwrap().into(),
    ];
    let expected = [("whiten", 12), ("whiten-4", 4), ("flow", 12)];
    for (t, (kind, out_dims)) in transforms.iter().zip(expected) {
        assert_eq!(t.kind(), kind);
        assert_eq!(t.id().kind, kind);
        assert_eq!(t.id().sha256.len(), 64);
        assert_eq!((t.input_dims(), t.output_dims()), (12, out_dims));
        assert_eq!(t.encoder(), &encoder("mean"));
        let path = dir.path().join(format!("{kind}.safetensors"));
        t.save(&path).unwrap();
        let loaded = Transform::load(&path).unwrap();
        assert_eq!(loaded.kind(), kind);
        assert_eq!(loaded.id(), t.id());
        let out = t.apply(&encoder("mean"), &data).unwrap();
        assert_eq!(out[0].len(), out_dims);
        assert_eq!(loaded.apply(&encoder("mean"), &data).unwrap(), out);
        assert!(matches!(loaded.apply(&encoder("cls"), &data), Err(Error::PipelineMismatch { .. })));
    }
    // Different parameters, different ids.
    assert_ne!(transforms[0].id().sha256, transforms[1].id().sha256);
}

#[test]
fn one_transform_always_serialises_to_the_same_bytes() {
    // The metadata map is written in hash order, which differs from one map to the next: the
    // bytes (a collection records its transform by their hash) must not.
    let data = anisotropic_gaussian(200, 8, 8, 2);
    let t: Transform = fit_whitening(&data, &encoder("mean"), Some(4)).unwrap().into();
    let first = t.to_bytes().unwrap();
    for _ in 0..20 {
        assert_eq!(t.to_bytes().unwrap(), first);
    }
    let header_len = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&first[8..8 + header_len]).unwrap();
    let metadata_keys: Vec<&String> = header["__metadata__"].as_object().unwrap().keys().collect();
    let text = std::str::from_utf8(&first[8..8 + header_len]).unwrap();
    let positions: Vec<usize> = metadata_keys.iter().map(|k| text.find(&format!("\"{k}\"")).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "metadata keys not in sorted order: {text}");
    let loaded = Transform::from_bytes(&first, Path::new("memory")).unwrap();
    assert_eq!(loaded.id(), t.id());
    assert_eq!(loaded.apply(&encoder("mean"), &data).unwrap(), t.apply(&encoder("mean"), &data).unwrap());
}

fn load_error(path: &Path) -> Error {
    match Transform::load(path) {
        Ok(t) => panic!("{} loaded as {}", path.display(), t.kind()),
        Err(e) => e,
    }
}

#[test]
fn damaged_or_foreign_files_are_clear_errors() {
    let data = anisotropic_gaussian(200, 8, 8, 2);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    Transform::from(fit_flow(&data, &encoder("mean"), &small_flow_config(), &Silent).unwrap()).save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let missing = dir.path().join("missing.safetensors");
    assert!(matches!(load_error(&missing), Error::Io { .. }));

    let write = |name: &str, content: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    // Truncations at several places, garbage, an empty file.
    for cut in [0, 4, 8, 40, bytes.len() / 2, bytes.len() - 1] {
        let p = write("cut.safetensors", &bytes[..cut]);
        assert!(matches!(load_error(&p), Error::Transform(_)), "cut at {cut}");
    }
    let p = write("garbage.safetensors", &[0xff; 300]);
    assert!(matches!(load_error(&p), Error::Transform(_)));

    // A valid safetensors file without isovec metadata (e.g. a model's weights).
    let foreign = safetensors::serialize(
        vec![("w", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &[0u8; 8]).unwrap())],
        None,
    )
    .unwrap();
    let p = write("foreign.safetensors", &foreign);
    let err = load_error(&p);
    assert!(err.to_string().contains("isovec fit"), "{err}");

    // The right metadata with a tensor of the wrong shape, or an unknown kind.
    let mut file = file::TransformFile::from_bytes(&bytes, &good).unwrap();
    file.tensors[0].shape = vec![file.tensors[0].bytes.len() / 4];
    let p = write("reshaped.safetensors", &file.to_bytes().unwrap());
    assert!(matches!(load_error(&p), Error::Transform(_)));
    let mut file = file::TransformFile::from_bytes(&bytes, &good).unwrap();
    file.family = "pca".into();
    let p = write("unknown.safetensors", &file.to_bytes().unwrap());
    assert!(load_error(&p).to_string().contains("unknown transform kind"));
    let mut file = file::TransformFile::from_bytes(&bytes, &good).unwrap();
    file.config = "{\"dims\": 8, \"flow\": {\"levels\": 0}}".into();
    let p = write("badconfig.safetensors", &file.to_bytes().unwrap());
    assert!(matches!(load_error(&p), Error::Transform(_)));
}

#[test]
fn whitening_and_flow_bring_random_pair_cosine_near_zero() {
    let data = anisotropic_gaussian(4000, 16, 16, 5);
    let before = mean_random_pair_cosine(&data, 20_000, 1);
    assert!(before > 0.5, "synthetic data should sit in a narrow cone: {before}");

    let whitened = fit_whitening(&data, &encoder("mean"), None).unwrap().apply(&encoder("mean"), &data).unwrap();
    let after_whitening = mean_random_pair_cosine(&whitened, 20_000, 1);
    assert!(after_whitening.abs() < 0.05, "after whitening: {after_whitening}");

    let config = FlowConfig { epochs: 3.0, ..FlowConfig::default() };
    let z = fit_flow(&data, &encoder("mean"), &config, &Silent).unwrap().apply(&encoder("mean"), &data).unwrap();
    let after_flow = mean_random_pair_cosine(&z, 20_000, 1);
    assert!(after_flow.abs() < 0.05, "after flow: {after_flow}");
    eprintln!("mean random-pair cosine: raw {before:.3}, whitened {after_whitening:.4}, flow {after_flow:.4}");
}
