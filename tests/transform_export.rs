//! `isovec transform export`: a whitening's arrays reproduce isovec's vectors when applied by
//! another program; a flow is refused with the reason.

use std::process::Command;

use isovec::transform::synthetic::anisotropic_gaussian;
use isovec::transform::{fit_flow, fit_whitening, FlowConfig, Transform};
use isovec::EncoderId;

fn encoder() -> EncoderId {
    EncoderId {
        model: "synthetic".into(),
        weights_sha256: "ab".repeat(32),
        files_sha256: None,
        pooling: "mean".into(),
        max_length: 128,
        prefixes: Default::default(),
    }
}

fn export(transform: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_isovec"))
        .args(["transform", "export"])
        .arg(transform)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn whitening_arrays_applied_in_f64_give_isovecs_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let data = anisotropic_gaussian(500, 12, 12, 3);
    for k in [None, Some(5)] {
        let whitening = fit_whitening(&data, &encoder(), k).unwrap();
        let path = dir.path().join("w.safetensors");
        Transform::from(whitening).save(&path).unwrap();
        let transform = Transform::load(&path).unwrap();
        let out = dir.path().join("arrays");
        let run = export(&path, &out);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("transform.json")).unwrap()).unwrap();
        let mean: Vec<f64> = serde_json::from_value(json["mean"].clone()).unwrap();
        let matrix: Vec<Vec<f64>> = serde_json::from_value(json["matrix"].clone()).unwrap();
        let k = k.unwrap_or(12);
        assert_eq!((json["input_dims"].as_u64(), json["output_dims"].as_u64()), (Some(12), Some(k as u64)));
        assert_eq!((mean.len(), matrix.len(), matrix[0].len()), (12, 12, k));
        assert_eq!(json["encoder"]["weights_sha256"], encoder().weights_sha256);
        // What another engine does: centre, multiply, normalise, in f64.
        let ours = transform.apply(&encoder(), &data[..50]).unwrap();
        for (x, isovec_y) in data[..50].iter().zip(&ours) {
            let y: Vec<f64> = (0..k).map(|j| (0..12).map(|i| (x[i] as f64 - mean[i]) * matrix[i][j]).sum()).collect();
            let norm_y = y.iter().map(|v| v * v).sum::<f64>().sqrt();
            let norm_isovec = isovec_y.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
            for (a, b) in y.iter().zip(isovec_y) {
                assert!((a / norm_y - *b as f64 / norm_isovec).abs() < 1e-6, "{a} vs {b}");
            }
        }
    }
}

#[test]
fn a_flow_cannot_be_exported_and_the_error_says_to_use_isovec() {
    let dir = tempfile::tempdir().unwrap();
    let data = anisotropic_gaussian(200, 8, 8, 4);
    let config = FlowConfig { levels: 2, steps_per_level: 2, width: 8, ..FlowConfig::default() };
    let path = dir.path().join("f.safetensors");
    Transform::from(fit_flow(&data, &encoder(), &config, &isovec::progress::Silent).unwrap()).save(&path).unwrap();
    let out = dir.path().join("arrays");
    let run = export(&path, &out);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("BERT-flow") && stderr.contains("isovec embed --transform"), "{stderr}");
    assert!(!out.join("transform.json").exists());
}
