// CPU kernels of torch.ops.dau.sensitivity_features and its backward
// (schemas in ../registration.cpp).
//
// Forward: one pass over the rows of the batch writes each output row
// [logits | one_hot | sensitivity] once; the sensitivity of row b sums
// |noisy - logits| over the m noisy copies in registers/L1 (float32 for
// float16/bfloat16 inputs) and scales once by 1 / (m * sigma). Backward: one
// pass writes the gradient of every noisy row (sign(noisy - logits) times the
// scaled gradient) and the gradient of logits (its own part minus the sum of
// those). Rows are spread over torch's intra-op thread pool.

#include "../sensitivity_features_common.h"
#include "cpu_common.h"

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/util/Exception.h>

#include <cstdint>
#include <tuple>
#include <vector>

namespace dau::ops {

using torch::stable::Tensor;

namespace {

// Work of one row is about (m + 3) * C elements; a chunk of rows is at least
// this many elements before the thread pool is used.
constexpr int64_t kGrainElements = int64_t{1} << 16;

int64_t row_grain(int64_t m, int64_t classes) {
  const int64_t per_row = (m + 3) * (classes > 0 ? classes : 1);
  return per_row >= kGrainElements ? 1 : kGrainElements / per_row;
}

template <typename T>
inline T sign_of(T value) {
  return static_cast<T>((value > T(0)) - (value < T(0)));
}

template <typename scalar_t>
void forward_rows(
    const scalar_t* logits,
    const scalar_t* noisy,
    const int64_t* labels,
    scalar_t* out,
    int64_t batch,
    int64_t classes,
    int64_t m,
    double sigma) {
  using acc_t = typename cpu::OpMath<scalar_t>::type;
  const acc_t scale = static_cast<acc_t>(1.0 / (static_cast<double>(m) * sigma));
  torch::stable::parallel_for(0, batch, row_grain(m, classes), [&](int64_t begin, int64_t end) {
    std::vector<acc_t> sum(static_cast<size_t>(classes));
    for (int64_t b = begin; b < end; ++b) {
      const scalar_t* __restrict__ row = logits + b * classes;
      scalar_t* __restrict__ dst = out + b * 3 * classes;
      acc_t* __restrict__ acc = sum.data();
      for (int64_t k = 0; k < classes; ++k) {
        dst[k] = row[k];
        dst[classes + k] = scalar_t(0);
        acc[k] = acc_t(0);
      }
      dst[classes + labels[b]] = scalar_t(1);
      for (int64_t j = 0; j < m; ++j) {
        const scalar_t* __restrict__ copy = noisy + (j * batch + b) * classes;
        for (int64_t k = 0; k < classes; ++k) {
          const acc_t d = static_cast<acc_t>(copy[k]) - static_cast<acc_t>(row[k]);
          acc[k] += d < acc_t(0) ? -d : d;
        }
      }
      for (int64_t k = 0; k < classes; ++k) {
        dst[2 * classes + k] = static_cast<scalar_t>(acc[k] * scale);
      }
    }
  });
}

template <typename scalar_t>
void backward_rows(
    const scalar_t* grad,
    const scalar_t* logits,
    const scalar_t* noisy,
    scalar_t* grad_logits,
    scalar_t* grad_noisy,
    int64_t batch,
    int64_t classes,
    int64_t m,
    double sigma) {
  using acc_t = typename cpu::OpMath<scalar_t>::type;
  const acc_t scale = static_cast<acc_t>(1.0 / (static_cast<double>(m) * sigma));
  torch::stable::parallel_for(0, batch, row_grain(m, classes), [&](int64_t begin, int64_t end) {
    std::vector<acc_t> scaled_grad(static_cast<size_t>(classes));
    std::vector<acc_t> sum(static_cast<size_t>(classes));
    for (int64_t b = begin; b < end; ++b) {
      const scalar_t* __restrict__ row = logits + b * classes;
      const scalar_t* __restrict__ g = grad + b * 3 * classes;
      acc_t* __restrict__ gs = scaled_grad.data();
      acc_t* __restrict__ acc = sum.data();
      for (int64_t k = 0; k < classes; ++k) {
        gs[k] = static_cast<acc_t>(g[2 * classes + k]) * scale;
        acc[k] = acc_t(0);
      }
      for (int64_t j = 0; j < m; ++j) {
        const int64_t r = (j * batch + b) * classes;
        const scalar_t* __restrict__ copy = noisy + r;
        scalar_t* __restrict__ dst = grad_noisy + r;
        for (int64_t k = 0; k < classes; ++k) {
          const acc_t v =
              sign_of(static_cast<acc_t>(copy[k]) - static_cast<acc_t>(row[k])) * gs[k];
          dst[k] = static_cast<scalar_t>(v);
          acc[k] += v;
        }
      }
      scalar_t* __restrict__ dst = grad_logits + b * classes;
      for (int64_t k = 0; k < classes; ++k) {
        dst[k] = static_cast<scalar_t>(static_cast<acc_t>(g[k]) - acc[k]);
      }
    }
  });
}

} // namespace

Tensor sensitivity_features_cpu(
    const Tensor& logits,
    const Tensor& noisy_logits,
    const Tensor& labels,
    double sigma,
    int64_t num_classes) {
  const int64_t m =
      sensitivity_features::check_arguments(logits, noisy_logits, labels, sigma, num_classes);
  STD_TORCH_CHECK(
      logits.is_cpu(), "sensitivity_features: the CPU kernel got logits on ",
      device_string(logits));
  const Tensor l = torch::stable::contiguous(logits);
  const Tensor n = torch::stable::contiguous(noisy_logits);
  const Tensor y = torch::stable::contiguous(labels);
  const int64_t batch = l.size(0);
  const int64_t classes = l.size(1);
  const int64_t* label = y.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    STD_TORCH_CHECK(
        label[b] >= 0 && label[b] < classes, "sensitivity_features: label ", label[b],
        " is out of range for ", classes, " classes");
  }
  Tensor out = torch::stable::new_empty(l, {batch, 3 * classes});
  cpu::dispatch_float(l.scalar_type(), "sensitivity_features", [&](auto tag) {
    using scalar_t = typename decltype(tag)::type;
    forward_rows<scalar_t>(
        l.const_data_ptr<scalar_t>(), n.const_data_ptr<scalar_t>(), label,
        out.mutable_data_ptr<scalar_t>(), batch, classes, m, sigma);
  });
  return out;
}

std::tuple<Tensor, Tensor> sensitivity_features_backward_cpu(
    const Tensor& grad, const Tensor& logits, const Tensor& noisy_logits, double sigma) {
  const int64_t m =
      sensitivity_features::check_backward_arguments(grad, logits, noisy_logits, sigma);
  STD_TORCH_CHECK(
      logits.is_cpu(), "sensitivity_features_backward: the CPU kernel got logits on ",
      device_string(logits));
  const Tensor g = torch::stable::contiguous(grad);
  const Tensor l = torch::stable::contiguous(logits);
  const Tensor n = torch::stable::contiguous(noisy_logits);
  const int64_t batch = l.size(0);
  const int64_t classes = l.size(1);
  Tensor grad_logits = torch::stable::new_empty(l, {batch, classes});
  Tensor grad_noisy = torch::stable::new_empty(n, {n.size(0), classes});
  cpu::dispatch_float(l.scalar_type(), "sensitivity_features_backward", [&](auto tag) {
    using scalar_t = typename decltype(tag)::type;
    backward_rows<scalar_t>(
        g.const_data_ptr<scalar_t>(), l.const_data_ptr<scalar_t>(),
        n.const_data_ptr<scalar_t>(), grad_logits.mutable_data_ptr<scalar_t>(),
        grad_noisy.mutable_data_ptr<scalar_t>(), batch, classes, m, sigma);
  });
  return std::make_tuple(grad_logits, grad_noisy);
}

} // namespace dau::ops

STABLE_TORCH_LIBRARY_IMPL(dau, CPU, m) {
  m.impl("sensitivity_features", TORCH_BOX(&dau::ops::sensitivity_features_cpu));
  m.impl(
      "sensitivity_features_backward", TORCH_BOX(&dau::ops::sensitivity_features_backward_cpu));
}
