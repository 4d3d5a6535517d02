// CUDA kernels of torch.ops.dau.sensitivity_features and its backward
// (schemas in ../registration.cpp).
//
// Forward: one thread per output element of [B, 3C]; a sensitivity element
// sums |noisy - logits| over the m copies (consecutive threads read
// consecutive classes, so every load is coalesced). The labels are checked in
// the same launch with a device-side assertion, as torch's one_hot and
// cross_entropy do on CUDA: a label outside [0, C) stops the program with
// "sensitivity_features: label out of range [0, num_classes)" at the next
// synchronisation. Raising a Python error instead would need the labels on the
// host, a stream synchronisation per call that stalls the DAU step; dau's own
// pipelines check the labels once, when a dataset is loaded.
// Backward: one thread per (b, k) writes the m noisy-row gradients and the
// logits gradient. Everything runs on torch's current CUDA stream.

#include "cuda_common.cuh"

#include "../sensitivity_features_common.h"

#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/macros.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/macros/Macros.h>
#include <torch/headeronly/util/Exception.h>

#include <cstdint>
#include <tuple>
#include <vector>

namespace dau::ops {

using torch::stable::Tensor;

namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) sensitivity_features_kernel(
    const scalar_t* __restrict__ logits,
    const scalar_t* __restrict__ noisy,
    const int64_t* __restrict__ labels,
    scalar_t* __restrict__ out,
    int64_t batch,
    int64_t classes,
    int64_t m,
    double scale) {
  using acc_t = typename cuda::Acc<scalar_t>::type;
  const int64_t total = batch * 3 * classes;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const int64_t b = i / (3 * classes);
    const int64_t col = i - b * 3 * classes;
    if (col < classes) {
      out[i] = logits[b * classes + col];
    } else if (col < 2 * classes) {
      const int64_t label = labels[b];
      CUDA_KERNEL_ASSERT_MSG(
          label >= 0 && label < classes,
          "sensitivity_features: label out of range [0, num_classes)");
      out[i] = cuda::from_acc<scalar_t>(acc_t(label == col - classes ? 1 : 0));
    } else {
      const int64_t k = col - 2 * classes;
      const acc_t clean = cuda::to_acc(logits[b * classes + k]);
      acc_t sum = acc_t(0);
      for (int64_t j = 0; j < m; ++j) {
        const acc_t d = cuda::to_acc(noisy[(j * batch + b) * classes + k]) - clean;
        sum += d < acc_t(0) ? -d : d;
      }
      out[i] = cuda::from_acc<scalar_t>(sum * static_cast<acc_t>(scale));
    }
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) sensitivity_features_backward_kernel(
    const scalar_t* __restrict__ grad,
    const scalar_t* __restrict__ logits,
    const scalar_t* __restrict__ noisy,
    scalar_t* __restrict__ grad_logits,
    scalar_t* __restrict__ grad_noisy,
    int64_t batch,
    int64_t classes,
    int64_t m,
    double scale) {
  using acc_t = typename cuda::Acc<scalar_t>::type;
  const int64_t total = batch * classes;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const int64_t b = i / classes;
    const int64_t k = i - b * classes;
    const acc_t clean = cuda::to_acc(logits[i]);
    const acc_t g = cuda::to_acc(grad[b * 3 * classes + 2 * classes + k]) *
        static_cast<acc_t>(scale);
    acc_t sum = acc_t(0);
    for (int64_t j = 0; j < m; ++j) {
      const int64_t r = (j * batch + b) * classes + k;
      const acc_t d = cuda::to_acc(noisy[r]) - clean;
      const acc_t v = d > acc_t(0) ? g : (d < acc_t(0) ? -g : acc_t(0));
      grad_noisy[r] = cuda::from_acc<scalar_t>(v);
      sum += v;
    }
    grad_logits[i] = cuda::from_acc<scalar_t>(cuda::to_acc(grad[b * 3 * classes + k]) - sum);
  }
}

void check_cuda(const char* op, const Tensor& logits) {
  STD_TORCH_CHECK(
      logits.is_cuda(), op, ": the CUDA kernel got logits on ", device_string(logits));
}

} // namespace

Tensor sensitivity_features_cuda(
    const Tensor& logits,
    const Tensor& noisy_logits,
    const Tensor& labels,
    double sigma,
    int64_t num_classes) {
  const int64_t m =
      sensitivity_features::check_arguments(logits, noisy_logits, labels, sigma, num_classes);
  check_cuda("sensitivity_features", logits);
  const int32_t device = logits.get_device_index();
  const torch::stable::accelerator::DeviceGuard guard(device);
  const Tensor l = dau::ops::contiguous(logits);
  const Tensor n = dau::ops::contiguous(noisy_logits);
  const Tensor y = dau::ops::contiguous(labels);
  const int64_t batch = l.size(0);
  const int64_t classes = l.size(1);
  Tensor out = torch::stable::new_empty(l, {batch, 3 * classes});
  const cudaStream_t stream = cuda::current_stream(device);
  const double scale = 1.0 / (static_cast<double>(m) * sigma);
  const int64_t total = batch * 3 * classes;
  cuda::dispatch_float(l.scalar_type(), "sensitivity_features", [&](auto tag) {
    using scalar_t = typename decltype(tag)::type;
    sensitivity_features_kernel<scalar_t>
        <<<cuda::blocks_for(total, kThreads), kThreads, 0, stream>>>(
            static_cast<const scalar_t*>(l.const_data_ptr()),
            static_cast<const scalar_t*>(n.const_data_ptr()),
            static_cast<const int64_t*>(y.const_data_ptr()),
            static_cast<scalar_t*>(out.mutable_data_ptr()), batch, classes, m, scale);
    STD_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<Tensor, Tensor> sensitivity_features_backward_cuda(
    const Tensor& grad, const Tensor& logits, const Tensor& noisy_logits, double sigma) {
  const int64_t m =
      sensitivity_features::check_backward_arguments(grad, logits, noisy_logits, sigma);
  check_cuda("sensitivity_features_backward", logits);
  const int32_t device = logits.get_device_index();
  const torch::stable::accelerator::DeviceGuard guard(device);
  const Tensor g = dau::ops::contiguous(grad);
  const Tensor l = dau::ops::contiguous(logits);
  const Tensor n = dau::ops::contiguous(noisy_logits);
  const int64_t batch = l.size(0);
  const int64_t classes = l.size(1);
  Tensor grad_logits = torch::stable::new_empty(l, {batch, classes});
  Tensor grad_noisy = torch::stable::new_empty(n, {n.size(0), classes});
  const cudaStream_t stream = cuda::current_stream(device);
  const double scale = 1.0 / (static_cast<double>(m) * sigma);
  cuda::dispatch_float(l.scalar_type(), "sensitivity_features_backward", [&](auto tag) {
    using scalar_t = typename decltype(tag)::type;
    sensitivity_features_backward_kernel<scalar_t>
        <<<cuda::blocks_for(batch * classes, kThreads), kThreads, 0, stream>>>(
            static_cast<const scalar_t*>(g.const_data_ptr()),
            static_cast<const scalar_t*>(l.const_data_ptr()),
            static_cast<const scalar_t*>(n.const_data_ptr()),
            static_cast<scalar_t*>(grad_logits.mutable_data_ptr()),
            static_cast<scalar_t*>(grad_noisy.mutable_data_ptr()), batch, classes, m, scale);
    STD_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return std::make_tuple(grad_logits, grad_noisy);
}

} // namespace dau::ops

STABLE_TORCH_LIBRARY_IMPL(dau, CUDA, m) {
  m.impl("sensitivity_features", TORCH_BOX(&dau::ops::sensitivity_features_cuda));
  m.impl(
      "sensitivity_features_backward",
      TORCH_BOX(&dau::ops::sensitivity_features_backward_cuda));
}
