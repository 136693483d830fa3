#!/usr/bin/env bash
# Builds isovec with the `cuda` feature on a machine WITHOUT a GPU, and collects
# everything the binary needs at run time into one folder that can be carried to a
# GPU machine (which may reach no package registry).
#
# The CUDA toolkit comes from PyPI's NVIDIA wheels (CUDA 13.0: the lent GPU machines
# run driver 580, which supports CUDA up to 13.0; a newer toolkit would produce PTX and
# a libcudart the driver refuses). It is installed with `pip --target` into
# .cuda-sdk/ (gitignored), never system-wide.
#
# Usage: scripts/build-cuda.sh            (release build, sm_90 = H100/H200)
# Env:   CUDA_COMPUTE_CAP  GPU compute capability without the dot (default 90)
#        CARGO_TARGET_DIR   where cargo builds (default target-cuda/, kept apart from
#                           the CPU build so that neither invalidates the other)
#        CUDA_SDK           where the toolkit is installed (default .cuda-sdk)
#        CUDA_CARRY         output folder (default gpu-carry/)
# Output: $CUDA_CARRY/isovec (binary), $CUDA_CARRY/lib/*.so* (CUDA libraries it links),
#         $CUDA_CARRY/env.sh (sets LD_LIBRARY_PATH on the GPU machine).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SDK="${CUDA_SDK:-$ROOT/.cuda-sdk}"
CARRY="${CUDA_CARRY:-$ROOT/gpu-carry}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target-cuda}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"

# 1. Toolkit: compiler (nvcc, cicc, ptxas), headers (crt, cccl for cub/thrust) and the
#    shared libraries candle links: cudart, cublas/cublasLt, curand (and nvrtc, which the link
#    asks for but the finished binary does not keep).
#    Versions pinned to CUDA 13.0 so that compiler, headers and libraries agree.
CUDA_HOME="$SDK/nvidia/cu13"
if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
  python3 -m pip install --quiet --no-deps --target "$SDK" \
    "nvidia-cuda-nvcc==13.0.88" "nvidia-cuda-crt==13.0.88" "nvidia-nvvm==13.0.88" \
    "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-nvrtc==13.0.88" \
    "nvidia-cuda-cccl==13.0.85" "nvidia-cublas==13.0.2.14" "nvidia-curand==10.4.0.35"
fi

# 2. The wheels ship only versioned libraries (libcudart.so.13); the linker's -lcudart
#    needs the unversioned name.
LIB="$CUDA_HOME/lib"
for name in cudart cublas cublasLt curand nvrtc; do
  versioned="$(cd "$LIB" && ls "lib$name.so."* | grep -v '\.alt\.' | sort | head -n 1)"
  ln -sf "$versioned" "$LIB/lib$name.so"
done

# 3. libcuda.so belongs to the GPU driver, which this machine does not have. cudarc links
#    it directly (candle enables cudarc's `dynamic-linking`), so the link needs a stub that
#    defines the driver API's names; at run time the driver's real libcuda.so.1 is loaded
#    instead (same soname). The stub's functions are never called.
STUBS="$LIB/stubs"
if [ ! -f "$STUBS/libcuda.so" ]; then
  mkdir -p "$STUBS"
  cudarc_src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | sort | tail -n 1)"
  if [ -z "$cudarc_src" ]; then
    (cd "$ROOT" && cargo fetch --quiet)
    cudarc_src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* | sort | tail -n 1)"
  fi
  grep -ohE 'pub unsafe fn cu[A-Za-z0-9_]+\(' "$cudarc_src/src/driver/sys/mod.rs" \
    | sed -E 's/pub unsafe fn ([A-Za-z0-9_]+)\(/int \1(void) { return 999; }/' \
    | sort -u > "$STUBS/libcuda_stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$STUBS/libcuda.so" "$STUBS/libcuda_stub.c"
  # Lets the binary start here too (CPU only), for checks: LD_LIBRARY_PATH=$STUBS:$LIB.
  ln -sf libcuda.so "$STUBS/libcuda.so.1"
fi

export CUDA_HOME CUDA_ROOT="$CUDA_HOME" CUDA_PATH="$CUDA_HOME"
export PATH="$CUDA_HOME/bin:$PATH"
export LD_LIBRARY_PATH="$LIB:${LD_LIBRARY_PATH:-}"
export LIBRARY_PATH="$LIB:$STUBS:${LIBRARY_PATH:-}"
# The machine is small and shared: compile the CUDA kernels with at most 2 nvcc jobs.
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-2}"
nvcc --version | tail -n 2

# 4. Build.
nice -n 19 cargo build --release --features cuda --bin isovec

# 5. Collect the binary and a script that finds the CUDA libraries at run time. The
#    libraries are NOT carried by default: libcublasLt alone is ~540 MB, far over what
#    the device tool carries (64 MiB), and the lent GPU machines already hold the same
#    CUDA 13 libraries (PyTorch's nvidia-* wheels). CUDA_CARRY_LIBS=1 copies them too,
#    for a GPU machine that lacks them.
rm -rf "$CARRY"
mkdir -p "$CARRY"
cp "$CARGO_TARGET_DIR/release/isovec" "$CARRY/isovec"
strip "$CARRY/isovec"
if [ "${CUDA_CARRY_LIBS:-0}" = 1 ]; then
  mkdir -p "$CARRY/lib"
  for name in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10; do
    cp -L "$LIB/$name" "$CARRY/lib/$name"
  done
fi
cat > "$CARRY/env.sh" <<'EOF'
# Source on the GPU machine: puts the CUDA 13 libraries isovec links (cudart, cublas,
# cublasLt, curand) on LD_LIBRARY_PATH. Uses carried ones (lib/ beside this file)
# if present, else looks for them where PyTorch's nvidia-* wheels or a CUDA toolkit keep them.
CARRY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_isovec_cuda_dirs="$CARRY_DIR/lib"
for _lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10; do
  if [ ! -e "$CARRY_DIR/lib/$_lib" ]; then
    _found="$(find /opt /usr/local /usr/lib -name "$_lib" -print -quit 2>/dev/null)"
    if [ -z "$_found" ]; then
      echo "env.sh: $_lib not found; rebuild with CUDA_CARRY_LIBS=1 to carry it" >&2
    else
      _isovec_cuda_dirs="$_isovec_cuda_dirs:$(dirname "$_found")"
    fi
  fi
done
export LD_LIBRARY_PATH="$_isovec_cuda_dirs:${LD_LIBRARY_PATH:-}"
unset _lib _found _isovec_cuda_dirs
EOF
echo "built: $CARRY/isovec ($(du -sh "$CARRY" | cut -f1))"
echo "CUDA libraries it links (resolved here against the SDK; on the GPU machine via env.sh):"
ldd "$CARRY/isovec" | grep -E 'cuda|cublas|curand|nvrtc' || true
