// CUDA kernel of torch.ops.dau.noisy_replicate (schema in ../registration.cpp).
//
// One grid-stride launch writes every output element once: the first B rows
// copy x, every other element is x + sigma * n with n computed in the thread
// from its counter by the generator of ../noisy_replicate_common.h (the same
// code as the CPU kernel, so both give the same noise to float32 rounding).
// Runs on torch's current CUDA stream.

#include "cuda_common.cuh"

#include "../noisy_replicate_common.h"

#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/macros.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/util/Exception.h>

#include <cstdint>

namespace dau::ops {

using torch::stable::Tensor;

namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) noisy_replicate_kernel(
    const scalar_t* __restrict__ x,
    scalar_t* __restrict__ out,
    int64_t per_copy,
    int64_t total,
    double sigma,
    uint64_t key,
    uint64_t offset) {
  using acc_t = typename cuda::Acc<scalar_t>::type;
  const acc_t scale = static_cast<acc_t>(sigma);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    if (i < per_copy) {
      out[i] = x[i];
    } else {
      const int64_t k = i - per_copy;  // index among the noise elements
      const float n = rng::normal_at(key, offset + static_cast<uint64_t>(k));
      out[i] = cuda::from_acc<scalar_t>(
          cuda::to_acc(x[k % per_copy]) + scale * static_cast<acc_t>(n));
    }
  }
}

} // namespace

Tensor noisy_replicate_cuda(
    const Tensor& x, int64_t m, double sigma, int64_t seed, int64_t offset) {
  noisy_replicate::check_arguments(x, m, sigma, offset);
  STD_TORCH_CHECK(
      x.is_cuda(), "noisy_replicate: the CUDA kernel got x on ", device_string(x));
  const torch::stable::accelerator::DeviceGuard guard(x.get_device_index());
  const Tensor input = dau::ops::contiguous(x);
  Tensor out = torch::stable::new_empty(input, noisy_replicate::output_sizes(input, m));
  const int64_t per_copy = input.numel();
  if (per_copy == 0) {
    return out;
  }
  const int64_t total = (m + 1) * per_copy;
  const uint64_t key = rng::mix64(static_cast<uint64_t>(seed));
  const cudaStream_t stream = cuda::current_stream(x.get_device_index());
  cuda::dispatch_float(input.scalar_type(), "noisy_replicate", [&](auto tag) {
    using scalar_t = typename decltype(tag)::type;
    noisy_replicate_kernel<scalar_t>
        <<<cuda::blocks_for(total, kThreads, 65536), kThreads, 0, stream>>>(
            static_cast<const scalar_t*>(input.const_data_ptr()),
            static_cast<scalar_t*>(out.mutable_data_ptr()), per_copy, total, sigma, key,
            static_cast<uint64_t>(offset));
    STD_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

} // namespace dau::ops

STABLE_TORCH_LIBRARY_IMPL(dau, CUDA, m) {
  m.impl("noisy_replicate", TORCH_BOX(&dau::ops::noisy_replicate_cuda));
}
