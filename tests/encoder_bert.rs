//! isovec's BERT checked against independent computations.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use isovec::encoder::{BatchInput, Bert, BertConfig, Encoder, EncoderOptions, Mode, ModelDir, Pooling};
use isovec::test_support::default_model;

const SENTENCES: [&str; 4] = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog near the riverbank at dawn.",
    "Hi",
    "Scientists found that the vaccine reduced the risk of severe illness in older adults.",
];

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn last_hidden_state_matches_candle_transformers() {
    let Some(path) = default_model() else { return };
    let dev = Device::Cpu;
    let dir = ModelDir::open(&path).unwrap();
    let ours = Encoder::load(&path, EncoderOptions::default()).unwrap();
    let tokens = ours.tokenizer().tokenize(&SENTENCES).unwrap();
    let ids: Vec<&[u32]> = tokens.iter().map(|t| t.ids.as_slice()).collect();
    let input = BatchInput::from_ids(&ids, 0, &dev).unwrap();
    let out = ours.bert().forward(&input, Mode::Infer).unwrap();

    let cfg: candle_transformers::models::bert::Config =
        serde_json::from_str(&std::fs::read_to_string(&dir.config).unwrap()).unwrap();
    // SAFETY: nothing changes the weights file while the test maps it.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&dir.weights], DType::F32, &dev).unwrap() };
    let reference = candle_transformers::models::bert::BertModel::load(vb, &cfg).unwrap();
    let mask_u32 = input.attention_mask.to_dtype(DType::U32).unwrap();
    let expected = reference.forward(&input.input_ids, &input.token_type_ids, Some(&mask_u32)).unwrap();

    let last = out.hidden_states.last().unwrap();
    assert_eq!(out.hidden_states.len(), 7, "embedding output + 6 layers");
    // Compare real tokens only: padded positions are never used.
    let m = input.attention_mask.unsqueeze(2).unwrap();
    let diff = max_abs_diff(&last.broadcast_mul(&m).unwrap(), &expected.broadcast_mul(&m).unwrap());
    assert!(diff < 1e-4, "max |diff| = {diff}");

    // The differentiable path computes the same function as the fused one.
    let slow = ours.bert().forward(&input, Mode::Differentiable).unwrap();
    let diff = max_abs_diff(&slow.hidden_states[6].broadcast_mul(&m).unwrap(), &last.broadcast_mul(&m).unwrap());
    assert!(diff < 1e-4, "differentiable vs fused: {diff}");
}

/// The encoder's CPU inference path against candle's differentiable graph of the same weights,
/// on short sentences and on a 256-token text, every pooling the model has.
#[test]
fn cpu_inference_path_equals_the_differentiable_graph() {
    let Some(path) = default_model() else { return };
    let enc = Encoder::load(&path, EncoderOptions { max_length: Some(256), ..Default::default() }).unwrap();
    let long = "Scientists measured how the vaccine changed the risk of severe illness. ".repeat(30);
    let mut texts: Vec<&str> = SENTENCES.to_vec();
    texts.push(&long);
    let poolings: Vec<Pooling> = Pooling::ALL.into_iter().filter(|&p| enc.check_pooling(p).is_ok()).collect();
    let fast = enc.encode(&texts, &poolings).unwrap();
    let tokens = enc.tokenizer().tokenize(&texts).unwrap();
    assert_eq!(tokens[4].ids.len(), 256, "the long text fills the 256 positions");
    let ids: Vec<&[u32]> = tokens.iter().map(|t| t.ids.as_slice()).collect();
    let input = BatchInput::from_ids(&ids, 0, &Device::Cpu).unwrap();
    let out = enc.bert().forward(&input, Mode::Differentiable).unwrap();
    for (p, pooling) in poolings.iter().enumerate() {
        let want = pooling.pool(&out, &input.attention_mask).unwrap().to_vec2::<f32>().unwrap();
        for (i, row) in want.iter().enumerate() {
            let d = row.iter().zip(&fast.vectors[p][i]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(d < 1e-5, "{pooling}, text {i}: max |cpu − candle| = {d}");
        }
    }
}

#[test]
fn pooled_alone_equals_pooled_in_padded_batch() {
    let Some(path) = default_model() else { return };
    let enc = Encoder::load(&path, EncoderOptions { batch_size: 4, ..Default::default() }).unwrap();
    let batch = enc.encode(&SENTENCES, &Pooling::ALL).unwrap();
    for (i, s) in SENTENCES.iter().enumerate() {
        let alone = enc.encode(&[s], &Pooling::ALL).unwrap();
        for p in 0..Pooling::ALL.len() {
            let d =
                alone.vectors[p][0].iter().zip(&batch.vectors[p][i]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(d < 1e-5, "{} sentence {i}: {d}", Pooling::ALL[p]);
        }
    }
}

fn tiny_model(varmap: &VarMap) -> Bert {
    let cfg = BertConfig::tiny(50, 16, 2, 2);
    let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
    Bert::load(vb, &cfg, true).unwrap()
}

fn tiny_input() -> BatchInput {
    BatchInput::from_ids(&[&[1, 5, 7, 9, 2], &[1, 8, 2]], 0, &Device::Cpu).unwrap()
}

#[test]
fn backward_reaches_every_parameter() {
    let varmap = VarMap::new();
    let bert = tiny_model(&varmap);
    let input = tiny_input();
    let out = bert.forward(&input, Mode::Train).unwrap();
    let mean = Pooling::Mean.pool(&out, &input.attention_mask).unwrap();
    let cls = Pooling::Cls.pool(&out, &input.attention_mask).unwrap();
    let loss = (mean.sqr().unwrap().sum_all().unwrap() + cls.sqr().unwrap().sum_all().unwrap()).unwrap();
    let grads = loss.backward().unwrap();
    let data = varmap.data().lock().unwrap();
    // 16 tensors per layer, 5 in the embeddings, 2 in the pooler.
    assert_eq!(data.len(), 2 * 16 + 5 + 2, "every tensor of every layer");
    for (name, var) in data.iter() {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(norm > 0.0, "zero gradient for {name}");
    }
}

#[test]
fn dropout_only_in_training_mode() {
    let varmap = VarMap::new();
    let bert = tiny_model(&varmap);
    let input = tiny_input();
    let run = |mode| bert.forward(&input, mode).unwrap().hidden_states.last().unwrap().clone();
    assert_eq!(max_abs_diff(&run(Mode::Infer), &run(Mode::Infer)), 0.0);
    assert_eq!(max_abs_diff(&run(Mode::Differentiable), &run(Mode::Differentiable)), 0.0);
    assert!(max_abs_diff(&run(Mode::Train), &run(Mode::Train)) > 1e-3);
}
