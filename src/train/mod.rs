//! Training: SimCSE contrastive fine-tuning of the encoder (on a sentence file, NLI triplets, or
//! a store collection's own texts), and what it is built from.

pub mod adapt;
pub mod alignment;
pub mod augment;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod loss;
pub mod optimizer;
pub mod simcse;

pub use bench::{bench_train, TrainBench};
pub use simcse::{
    DevScores, DevSet, Evaluation, FitReport, MlpUse, ModelInit, Objective, PseudoScores, SimcseConfig, StepStats,
    Trainer, TrainingData, Validated, Validation,
};
