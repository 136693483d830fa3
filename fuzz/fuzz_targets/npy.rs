//! The `.npy` reader (vectors for `bench ann`, `embed` outputs read back): any file is read or
//! refused without a panic or a huge allocation, and what is read writes back to the same values.
#![no_main]

use isovec::store::vecfile::{read_npy, write_npy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = isovec_fuzz::scratch_file("input.npy", data);
    let Ok(vectors) = read_npy(&path) else { return };
    assert_eq!(vectors.rows() * vectors.dims, vectors.data.len(), "rows × dims values");
    let again = isovec_fuzz::scratch_file("again.npy", b"");
    write_npy(&again, &vectors).expect("writing what was read");
    let back = read_npy(&again).expect("reading what was written");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!((back.dims, bits(&back.data)), (vectors.dims, bits(&vectors.data)));
});
