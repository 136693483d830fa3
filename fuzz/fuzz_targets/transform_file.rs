//! Loading a transform file (whitening or flow, safetensors with isovec metadata): any file is
//! loaded or refused without a panic, and a loaded transform applies to a vector of its input
//! size (or refuses it) without a panic.
#![no_main]

use isovec::transform::Transform;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = isovec_fuzz::scratch_file("transform.safetensors", data);
    let Ok(transform) = Transform::load(&path) else { return };
    let dims = transform.input_dims();
    // The sizes come from tensors stored in the file, so they are bounded by its length.
    if dims <= 1 << 16 {
        let vector: Vec<f32> = (0..dims).map(|i| (i as f32 * 0.37).sin()).collect();
        if let Ok(out) = transform.apply(transform.encoder(), &[vector]) {
            assert_eq!(out[0].len(), transform.output_dims());
        }
    }
});
