//! SimCSE training on a tiny model: every parameter trains, the loss falls, checkpoints reload
//! through the encoder with the same vectors, and a run keeps its best checkpoint.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use isovec::encoder::{Bert, BertConfig, Encoder, EncoderOptions, Mode, Pooling};
use isovec::eval::sts::StsPair;
use isovec::test_support::data_dir;
use isovec::train::checkpoint::read_training_info;
use isovec::train::data::Triplet;
use isovec::train::optimizer::LinearSchedule;
use isovec::train::{DevSet, MlpUse, ModelInit, SimcseConfig, Trainer};

const WORDS: &str = "a the man woman dog cat is are plays playing guitar piano runs sleeps on in park house \
                     red blue big small child children eats food rides horse bike street water swims";

const SENTENCES: [&str; 8] = [
    "a man plays the guitar",
    "a woman is playing the piano",
    "the dog runs in the park",
    "a cat sleeps on the house",
    "children ride a horse",
    "a big red bike on the street",
    "a small blue dog swims in water",
    "the woman eats food in the house",
];

/// A model folder with a WordPiece vocabulary and random weights (with a pooler).
///
/// Without dropout a training step is deterministic, so a loss measured on a fixed batch must fall;
/// with it, a width-16 model's two views differ so much that a few steps say little.
fn tiny_model_dir(dir: &Path, dropout: bool) {
    let mut vocab = vec!["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    vocab.extend(WORDS.split_whitespace());
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n")).unwrap();
    let mut cfg = BertConfig::tiny(vocab.len(), 16, 2, 2);
    cfg.max_position_embeddings = 32;
    if !dropout {
        cfg.hidden_dropout_prob = 0.0;
        cfg.attention_probs_dropout_prob = 0.0;
    }
    std::fs::write(dir.join("config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    Bert::load(vb, &cfg, true).unwrap();
    varmap.save(dir.join("model.safetensors")).unwrap();
}

fn config(pooling: Pooling, mlp: MlpUse) -> SimcseConfig {
    let mut c = SimcseConfig::unsupervised();
    c.pooling = pooling;
    c.mlp = mlp;
    c.batch_size = 4;
    c.max_length = 16;
    c.optimizer.lr = 1e-3;
    c.temperature = 0.1;
    c
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn a_step_changes_every_parameter() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model_dir(tmp.path(), true);
    let mut trainer =
        Trainer::new(tmp.path(), &ModelInit::Pretrained, config(Pooling::Cls, MlpUse::TrainOnly), &Device::Cpu)
            .unwrap();
    let sentences: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    let data = trainer.tokenize_sentences(&sentences).unwrap();
    let before = trainer.variables().unwrap();
    assert!(before.iter().any(|(n, _)| n == "mlp.dense.weight"), "SimCSE's MLP is trained");
    // 2 layers × 16 tensors + 5 embedding tensors + the MLP's 2.
    assert_eq!(before.len(), 2 * 16 + 5 + 2);
    let schedule = LinearSchedule { warmup_steps: 0, total_steps: 10 };
    let stats = trainer.train_step(&data, &[0, 1, 2, 3], &schedule).unwrap();
    assert!(stats.loss.is_finite() && stats.grad_norm > 0.0 && stats.lr == 1e-3);
    for ((name, old), (_, new)) in before.iter().zip(trainer.variables().unwrap()) {
        let d =
            max_diff(&old.flatten_all().unwrap().to_vec1().unwrap(), &new.flatten_all().unwrap().to_vec1().unwrap());
        assert!(d > 0.0, "{name} did not change");
    }
}

#[test]
fn supervised_loss_on_a_fixed_batch_falls() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model_dir(tmp.path(), false);
    let mut cfg = config(Pooling::Cls, MlpUse::Keep);
    cfg.objective = isovec::train::Objective::Supervised;
    let mut trainer = Trainer::new(tmp.path(), &ModelInit::Pretrained, cfg, &Device::Cpu).unwrap();
    let triplets: Vec<Triplet> = (0..4)
        .map(|i| Triplet {
            anchor: SENTENCES[i].into(),
            positive: SENTENCES[i].replace("a ", "the "),
            hard_negative: SENTENCES[i + 4].into(),
        })
        .collect();
    let data = trainer.tokenize_triplets(&triplets).unwrap();
    let batch = [0, 1, 2, 3];
    let loss = |t: &Trainer| t.batch_loss(&data, &batch, Mode::Differentiable).unwrap().to_scalar::<f32>().unwrap();
    let start = loss(&trainer);
    let schedule = LinearSchedule { warmup_steps: 0, total_steps: 100 };
    for _ in 0..8 {
        trainer.train_step(&data, &batch, &schedule).unwrap();
    }
    let end = loss(&trainer);
    assert!(end < 0.7 * start, "loss {start} → {end}");
}

/// Saves after a step and reloads through `Encoder::load` with the pooling `training.json` names.
fn round_trip(pooling: Pooling, mlp: MlpUse, expected_pooling: Pooling) {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model_dir(tmp.path(), true);
    let mut trainer = Trainer::new(tmp.path(), &ModelInit::Pretrained, config(pooling, mlp), &Device::Cpu).unwrap();
    let sentences: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    let data = trainer.tokenize_sentences(&sentences).unwrap();
    trainer.train_step(&data, &[4, 5, 6, 7], &LinearSchedule { warmup_steps: 0, total_steps: 2 }).unwrap();
    let ckpt = tmp.path().join("out").join("ckpt");
    trainer.save(&ckpt, None, serde_json::json!({"test": true})).unwrap();
    let info = read_training_info(&ckpt).unwrap().unwrap();
    assert_eq!(info.step, 1);
    assert_eq!(info.pooling, expected_pooling.name());
    for f in ["config.json", "vocab.txt", "model.safetensors", "training.json"] {
        assert!(ckpt.join(f).is_file(), "{f} missing");
    }
    let ours = trainer.encode(&SENTENCES, 3).unwrap();
    let options = EncoderOptions { max_length: Some(16), ..Default::default() };
    let reloaded = Encoder::load(&ckpt, options).unwrap().encode(&SENTENCES, &[expected_pooling]).unwrap();
    for (a, b) in ours.iter().zip(&reloaded.vectors[0]) {
        assert!(max_diff(a, b) < 1e-5, "{pooling} / {mlp:?}: {}", max_diff(a, b));
    }
    // Training again from the checkpoint restores the MLP as well as BERT.
    let resumed = Trainer::new(&ckpt, &ModelInit::Pretrained, config(pooling, mlp), &Device::Cpu).unwrap();
    for ((n, a), (_, b)) in trainer.variables().unwrap().iter().zip(resumed.variables().unwrap()) {
        let d = max_diff(&a.flatten_all().unwrap().to_vec1().unwrap(), &b.flatten_all().unwrap().to_vec1().unwrap());
        assert_eq!(d, 0.0, "{n} not restored");
    }
}

#[test]
fn checkpoint_reloads_with_the_same_vectors_mlp_kept() {
    round_trip(Pooling::Cls, MlpUse::Keep, Pooling::Cls);
}

#[test]
fn checkpoint_reloads_with_the_same_vectors_mlp_train_only() {
    round_trip(Pooling::Cls, MlpUse::TrainOnly, Pooling::ClsBeforePooler);
}

#[test]
fn checkpoint_reloads_with_the_same_vectors_mean() {
    round_trip(Pooling::Mean, MlpUse::TrainOnly, Pooling::Mean);
}

#[test]
fn fit_keeps_the_best_checkpoint_and_a_last_one() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model_dir(tmp.path(), true);
    let mut cfg = config(Pooling::Cls, MlpUse::TrainOnly);
    cfg.max_steps = Some(4);
    cfg.eval_every = 2;
    let mut trainer =
        Trainer::new(tmp.path(), &ModelInit::Random { layers: 1, hidden: 8, heads: 2 }, cfg, &Device::Cpu).unwrap();
    let sentences: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    let data = trainer.tokenize_sentences(&sentences).unwrap();
    let dev = DevSet::new(
        (0..4).map(|i| StsPair { a: SENTENCES[i].into(), b: SENTENCES[i + 4].into(), score: i as f64 + 1.5 }).collect(),
    );
    let out = tmp.path().join("run");
    let report = trainer.fit(&data, Some(&dev), &out, serde_json::json!({}), &isovec::progress::Silent).unwrap();
    assert_eq!(report.steps, 4);
    let (best_step, best) = report.best.unwrap();
    let info = read_training_info(&out.join("best")).unwrap().unwrap();
    assert_eq!(info.step, best_step);
    assert_eq!(info.stsb_dev_spearman, Some(best.spearman));
    for s in [report.before.unwrap(), report.after.unwrap()] {
        assert!(s.spearman <= best.spearman);
    }
    assert_eq!(read_training_info(&out.join("last")).unwrap().unwrap().step, 4);
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("\"loss\"")).count(), 4);
    assert_eq!(log.lines().filter(|l| l.contains("stsb_dev")).count(), 3, "before, step 2, after");
    // Random init with 1 layer of width 8 is what was written.
    let cfg: BertConfig =
        serde_json::from_str(&std::fs::read_to_string(out.join("last/config.json")).unwrap()).unwrap();
    assert_eq!((cfg.num_hidden_layers, cfg.hidden_size), (1, 8));
}

#[test]
fn real_training_files_parse_completely() {
    let Some(data) = data_dir("nli") else { return };
    let triplets = isovec::train::data::read_triplets(&data.join("nli/snli_devtest_triplets_for_simcse.csv")).unwrap();
    assert_eq!(triplets.len(), 5864);
    // The second record is quoted because it contains commas.
    assert!(triplets[1].anchor.starts_with("Two young children in blue jerseys , one with"), "{:?}", triplets[1]);
    assert_eq!(triplets[1].positive, "Two kids in numbered jerseys wash their hands .");
    let corpus = isovec::train::data::read_corpus(&data.join("corpus/wiki1m_for_simcse.first11914.txt")).unwrap();
    assert_eq!(corpus.len(), 11_914);
}

#[test]
fn dropout_and_word_deletion_outside_zero_to_one_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model_dir(tmp.path(), true);
    for p in [1.0, 1.5, -0.1] {
        let c = SimcseConfig { dropout: Some(p), ..config(Pooling::Mean, MlpUse::TrainOnly) };
        let err = Trainer::new(tmp.path(), &ModelInit::Pretrained, c, &Device::Cpu).err();
        assert!(matches!(err, Some(isovec::Error::InvalidInput(_))), "dropout {p}: {err:?}");
        let c = SimcseConfig { word_deletion: p, ..config(Pooling::Mean, MlpUse::TrainOnly) };
        let err = Trainer::new(tmp.path(), &ModelInit::Pretrained, c, &Device::Cpu).err();
        assert!(matches!(err, Some(isovec::Error::InvalidInput(_))), "word deletion {p}: {err:?}");
    }
    let c = SimcseConfig { dropout: Some(0.3), word_deletion: 0.5, ..config(Pooling::Mean, MlpUse::TrainOnly) };
    assert!(Trainer::new(tmp.path(), &ModelInit::Pretrained, c, &Device::Cpu).is_ok());
}

/// Without dropout the two views of a sentence are equal, so only word deletion can make them
/// differ: it must raise the loss (the positive is no longer the identical vector), and the same
/// step must delete the same words.
#[test]
fn word_deletion_makes_the_views_differ_reproducibly() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model_dir(tmp.path(), false);
    let sentences: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    let batch = [0, 1, 2, 3, 4, 5, 6, 7];
    let loss_with = |word_deletion: f64| {
        let c = SimcseConfig { word_deletion, batch_size: 8, ..config(Pooling::Mean, MlpUse::TrainOnly) };
        let trainer = Trainer::new(tmp.path(), &ModelInit::Pretrained, c, &Device::Cpu).unwrap();
        let data = trainer.tokenize_sentences(&sentences).unwrap();
        let loss = |t: &Trainer| t.batch_loss(&data, &batch, Mode::Infer).unwrap().to_scalar::<f32>().unwrap();
        let first = loss(&trainer);
        assert_eq!(first, loss(&trainer), "word deletion {word_deletion}: the same step, the same views");
        first
    };
    let identical = loss_with(0.0);
    let deleted = loss_with(0.5);
    assert!(deleted > identical + 0.01, "loss without deletion {identical}, with {deleted}");
}

#[test]
fn word_deletion_with_supervised_training_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let triplets = tmp.path().join("t.csv");
    std::fs::write(&triplets, "sent0,sent1,hard_neg\na b,a c,d e\n").unwrap();
    let out = tmp.path().join("run");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_isovec"))
        .args(["train", "simcse", "--mode", "sup", "--word-deletion", "0.3", "--triplets"])
        .arg(&triplets)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("--word-deletion") && stderr.contains("unsupervised"), "{stderr}");
    assert!(!out.exists());
}
