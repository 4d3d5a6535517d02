// What the CUDA kernels of torch.ops.dau share: the current stream of a
// device, the arithmetic type of each storage type with its conversions, a
// dispatch over the floating-point dtypes, and a block-wide sum.
//
// Only torch's stable ABI headers and the CUDA runtime headers are used.

#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../op_common.h"

#include <torch/csrc/inductor/aoti_torch/c/shim.h>
#include <torch/csrc/stable/macros.h>
#include <torch/headeronly/util/shim_utils.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <cstdint>

namespace dau::ops::cuda {

// torch's current CUDA stream of `device` (work launched there is ordered
// with the caller's other work).
inline cudaStream_t current_stream(int32_t device) {
  void* stream = nullptr;
  // TORCH_ERROR_CODE_CHECK: torch 2.10/2.11 headers lack STABLE_TORCH_ERROR_CODE_CHECK.
  TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device, &stream));
  return static_cast<cudaStream_t>(stream);
}

// Blocks of a grid-stride launch over `count` items, capped.
inline unsigned int blocks_for(int64_t count, int threads, int64_t cap = 4096) {
  int64_t blocks = (count + threads - 1) / threads;
  blocks = blocks < 1 ? 1 : (blocks > cap ? cap : blocks);
  return static_cast<unsigned int>(blocks);
}

// Float16 and bfloat16 are computed in float32 and rounded once when stored.
template <typename T>
struct Acc {
  using type = T;
};
template <>
struct Acc<__half> {
  using type = float;
};
template <>
struct Acc<__nv_bfloat16> {
  using type = float;
};

__device__ __forceinline__ float to_acc(__half x) {
  return __half2float(x);
}
__device__ __forceinline__ float to_acc(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
__device__ __forceinline__ float to_acc(float x) {
  return x;
}
__device__ __forceinline__ double to_acc(double x) {
  return x;
}

template <typename T>
__device__ __forceinline__ T from_acc(typename Acc<T>::type x);
template <>
__device__ __forceinline__ __half from_acc<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ float from_acc<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ double from_acc<double>(double x) {
  return x;
}

using dau::ops::TypeTag;

// Calls f(TypeTag<T>{}) with T the C++ type of `dtype` (float, double,
// __half or __nv_bfloat16); any other dtype is an error naming `op`.
template <typename F>
void dispatch_float(torch::headeronly::ScalarType dtype, const char* op, const F& f) {
  dispatch_float_types<float, double, __half, __nv_bfloat16>(dtype, op, f);
}

// The sum of `value` over a block of kThreads threads (a multiple of 32),
// valid in thread 0.
template <int kThreads>
__device__ __forceinline__ double block_sum(double value) {
  __shared__ double partial[kThreads / 32];
  for (int delta = 16; delta > 0; delta /= 2) {
    value += __shfl_down_sync(0xffffffffu, value, delta);
  }
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  if (lane == 0) {
    partial[warp] = value;
  }
  __syncthreads();
  value = threadIdx.x < kThreads / 32 ? partial[threadIdx.x] : 0.0;
  if (warp == 0) {
    for (int delta = 16; delta > 0; delta /= 2) {
      value += __shfl_down_sync(0xffffffffu, value, delta);
    }
  }
  return value;
}

} // namespace dau::ops::cuda
