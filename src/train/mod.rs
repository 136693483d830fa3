//! Training: SimCSE contrastive fine-tuning of the encoder, and what it is built from.

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
    DevScores, DevSet, FitReport, MlpUse, ModelInit, Objective, SimcseConfig, StepStats, Trainer, TrainingData,
};
