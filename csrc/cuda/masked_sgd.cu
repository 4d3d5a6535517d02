// CUDA kernel of torch.ops.dau.masked_sgd_ (schema in ../registration.cpp).
//
// Multi-tensor launches: the tensors of one call are packed, up to
// kMaxTensors per launch, into a by-value argument struct; every block updates
// one chunk of one tensor, so a ResNet-sized parameter list takes a handful of
// launches instead of one per tensor. Each element is read and written once
// (param, grad, buffer, mask), computed in float32 for float16 / bfloat16 and
// in the tensor's own precision otherwise. Work runs on torch's current CUDA
// stream of the tensors' device.
//
// Layouts: as on the CPU, operands that share one dense layout are used in
// place; anything else is made contiguous first (on the same stream) and the
// param and buffer are copied back afterwards.
//
// Only torch's stable ABI headers and the CUDA runtime headers are used.

#include "cuda_common.cuh"

#include "../masked_sgd_common.h"

#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/macros.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace dau::ops {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

namespace {

constexpr int kMaxTensors = 24;    // tensors per launch
constexpr int kMaxBlocks = 320;    // blocks per launch
constexpr int kThreads = 512;      // threads per block
constexpr int kIlp = 4;            // elements per thread and round
constexpr int64_t kChunk = 65536;  // elements per block

enum MomentumPhase : int { kNoMomentum = 0, kFirstStep = 1, kRunning = 2 };

struct Hyper {
  double lr;
  double momentum;
  double dampening;
  double weight_decay;
  bool nesterov;
  bool maximize;
  int phase;
};

// Everything one launch needs, passed by value (well under the 4 KiB limit
// of kernel parameters).
struct LaunchArgs {
  void* param[kMaxTensors];
  const void* grad[kMaxTensors];
  void* buffer[kMaxTensors];
  const void* mask[kMaxTensors];
  int64_t numel[kMaxTensors];
  unsigned char block_tensor[kMaxBlocks];
  int block_chunk[kMaxBlocks];
};

using cuda::Acc;
using cuda::from_acc;
using cuda::to_acc;

__device__ __forceinline__ bool is_active(uint8_t m) {
  return m != 0;
}
template <typename T>
__device__ __forceinline__ bool is_active(T m) {
  return to_acc(m) != 0;
}

// One block updates elements [chunk * kChunk, (chunk + 1) * kChunk) of one
// tensor. Each thread takes kIlp elements per round, kThreads apart (so a
// warp's accesses stay coalesced), and issues all their loads -- mask, param,
// grad, buffer -- before any arithmetic: the mask is not waited for before
// the other loads, so a round costs one memory latency, not two, and kIlp
// elements are in flight per thread. Stores are predicated on the mask, so a
// masked-out param is never written (it keeps its exact bits). The flags in
// `hyper` are the same for every thread, so their branches do not diverge.
template <typename scalar_t, typename mask_t>
__global__ void __launch_bounds__(kThreads)
    masked_sgd_kernel(const LaunchArgs args, const Hyper hyper) {
  using acc_t = typename Acc<scalar_t>::type;
  const int t = args.block_tensor[blockIdx.x];
  const int64_t begin = static_cast<int64_t>(args.block_chunk[blockIdx.x]) * kChunk;
  const int64_t numel = args.numel[t];
  const int64_t end = begin + kChunk < numel ? begin + kChunk : numel;
  scalar_t* __restrict__ param = static_cast<scalar_t*>(args.param[t]);
  const scalar_t* __restrict__ grad = static_cast<const scalar_t*>(args.grad[t]);
  scalar_t* __restrict__ buffer = static_cast<scalar_t*>(args.buffer[t]);
  const mask_t* __restrict__ mask = static_cast<const mask_t*>(args.mask[t]);

  const acc_t lr = static_cast<acc_t>(hyper.lr);
  const acc_t momentum = static_cast<acc_t>(hyper.momentum);
  const acc_t keep = static_cast<acc_t>(1.0 - hyper.dampening);
  const acc_t weight_decay = static_cast<acc_t>(hyper.weight_decay);
  const bool decay = hyper.weight_decay != 0.0;

  for (int64_t base = begin + threadIdx.x; base < end; base += int64_t{kThreads} * kIlp) {
    acc_t p[kIlp];
    acc_t g[kIlp];
    acc_t b[kIlp];
    bool active[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + int64_t{k} * kThreads;
      active[k] = false;
      p[k] = g[k] = b[k] = acc_t(0);
      if (i < end) {
        active[k] = mask == nullptr || is_active(mask[i]);
        p[k] = to_acc(param[i]);
        g[k] = to_acc(grad[i]);
        if (hyper.phase == kRunning) {
          b[k] = to_acc(buffer[i]);
        }
      }
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + int64_t{k} * kThreads;
      if (i >= end) {
        continue;
      }
      if (!active[k]) {
        // The param keeps its exact bits; the momentum buffer is cleared.
        if (hyper.phase != kNoMomentum) {
          buffer[i] = from_acc<scalar_t>(acc_t(0));
        }
        continue;
      }
      acc_t d = hyper.maximize ? -g[k] : g[k];
      if (decay) {
        d = d + weight_decay * p[k];
      }
      if (hyper.phase != kNoMomentum) {
        const acc_t m = hyper.phase == kFirstStep ? d : momentum * b[k] + keep * d;
        buffer[i] = from_acc<scalar_t>(m);
        d = hyper.nesterov ? d + momentum * m : m;
      }
      param[i] = from_acc<scalar_t>(p[k] - lr * d);
    }
  }
}

// --------------------------------------------------------------- launch -----

// The operands of one tensor as the kernel sees them.
struct Operand {
  Tensor param;        // written by the kernel
  Tensor grad;
  Tensor buffer;       // == param when momentum is off (never touched)
  Tensor mask;         // == param when there is no mask (never touched)
  bool has_mask;
  bool mask_is_byte;
  Tensor* copy_param_to;   // set when `param` is a contiguous copy
  Tensor* copy_buffer_to;  // set when `buffer` is a contiguous copy
};

template <typename scalar_t, typename mask_t>
void launch_group(
    const std::vector<Operand*>& group,
    bool use_buffers,
    const Hyper& hyper,
    cudaStream_t stream) {
  LaunchArgs args{};
  int tensors = 0;  // slots of `args` in use
  int blocks = 0;   // blocks packed so far
  auto flush = [&]() {
    if (blocks > 0) {
      masked_sgd_kernel<scalar_t, mask_t><<<blocks, kThreads, 0, stream>>>(args, hyper);
      STD_CUDA_KERNEL_LAUNCH_CHECK();
    }
    args = LaunchArgs{};
    tensors = 0;
    blocks = 0;
  };
  auto fill_slot = [&](int slot, Operand* op) {
    args.param[slot] = op->param.mutable_data_ptr();
    args.grad[slot] = op->grad.const_data_ptr();
    args.buffer[slot] = use_buffers ? op->buffer.mutable_data_ptr() : nullptr;
    args.mask[slot] = op->has_mask ? op->mask.const_data_ptr() : nullptr;
    args.numel[slot] = op->param.numel();
  };
  for (Operand* op : group) {
    const int64_t n = op->param.numel();
    if (n == 0) {
      continue;
    }
    if (tensors == kMaxTensors) {
      flush();
    }
    fill_slot(tensors, op);
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    for (int64_t c = 0; c < chunks; ++c) {
      if (blocks == kMaxBlocks) {
        // Launch what is packed; the rest of this tensor goes on in slot 0
        // of the next launch.
        flush();
        fill_slot(0, op);
      }
      args.block_tensor[blocks] = static_cast<unsigned char>(tensors);
      args.block_chunk[blocks] = static_cast<int>(c);
      ++blocks;
    }
    ++tensors;
  }
  flush();
}

template <typename scalar_t>
void launch_dtype(
    const std::vector<Operand*>& byte_masked,
    const std::vector<Operand*>& same_masked,
    bool use_buffers,
    const Hyper& hyper,
    cudaStream_t stream) {
  // Unmasked tensors travel with the byte-masked ones (their mask is null).
  if (!byte_masked.empty()) {
    launch_group<scalar_t, uint8_t>(byte_masked, use_buffers, hyper, stream);
  }
  if (!same_masked.empty()) {
    launch_group<scalar_t, scalar_t>(same_masked, use_buffers, hyper, stream);
  }
}

} // namespace

void masked_sgd_cuda(
    std::vector<Tensor> params,
    std::vector<Tensor> grads,
    std::vector<Tensor> momentum_buffers,
    std::vector<std::optional<Tensor>> masks,
    double lr,
    double momentum,
    double dampening,
    double weight_decay,
    bool nesterov,
    bool maximize,
    bool first_step) {
  masked_sgd::check_arguments(
      params, grads, momentum_buffers, masks, momentum, dampening, nesterov,
      [](const std::vector<Tensor>& ps, size_t i) {
        using masked_sgd::device_string;
        const Tensor& p = ps[i];
        STD_TORCH_CHECK(
            p.is_cuda(), "masked_sgd_: the CUDA kernel got params[", i, "] on ", device_string(p),
            "; all tensors of one call must be on one device");
        STD_TORCH_CHECK(
            p.get_device_index() == ps[0].get_device_index(),
            "masked_sgd_: params[", i, "] is on ", device_string(p), " but params[0] is on ",
            device_string(ps[0]), "; all tensors of one call must be on one device");
      });
  if (params.empty()) {
    return;
  }
  const bool use_buffers = momentum != 0.0;
  const Hyper hyper{
      lr,
      momentum,
      dampening,
      weight_decay,
      nesterov,
      maximize,
      use_buffers ? (first_step ? kFirstStep : kRunning) : kNoMomentum};

  const int32_t device = params[0].get_device_index();
  const torch::stable::accelerator::DeviceGuard guard(device);
  const cudaStream_t stream = cuda::current_stream(device);

  std::vector<Operand> operands;
  operands.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor& param = params[i];
    const Tensor& grad = grads[i];
    const bool has_mask = !masks.empty() && masks[i].has_value();
    const bool direct = masked_sgd::shares_dense_layout(
        param,
        grad,
        use_buffers ? &momentum_buffers[i] : nullptr,
        has_mask ? &*masks[i] : nullptr);
    const auto work = [direct](const Tensor& t) {
      return direct ? t : torch::stable::contiguous(t);
    };
    Operand op{
        work(param),
        work(grad),
        use_buffers ? work(momentum_buffers[i]) : param,
        has_mask ? work(*masks[i]) : param,
        has_mask,
        has_mask && (masks[i]->scalar_type() == ScalarType::Bool ||
                     masks[i]->scalar_type() == ScalarType::Byte),
        nullptr,
        nullptr};
    if (op.param.data_ptr() != param.data_ptr()) {
      op.copy_param_to = &param;
    }
    if (use_buffers && op.buffer.data_ptr() != momentum_buffers[i].data_ptr()) {
      op.copy_buffer_to = &momentum_buffers[i];
    }
    operands.push_back(std::move(op));
  }

  // One group of launches per (dtype, mask type); unmasked tensors join the
  // byte-mask launches of their dtype.
  std::map<ScalarType, std::pair<std::vector<Operand*>, std::vector<Operand*>>> groups;
  for (Operand& op : operands) {
    auto& entry = groups[op.param.scalar_type()];
    (!op.has_mask || op.mask_is_byte ? entry.first : entry.second).push_back(&op);
  }
  for (auto& [dtype, lists] : groups) {
    switch (dtype) {
      case ScalarType::Float:
        launch_dtype<float>(lists.first, lists.second, use_buffers, hyper, stream);
        break;
      case ScalarType::Double:
        launch_dtype<double>(lists.first, lists.second, use_buffers, hyper, stream);
        break;
      case ScalarType::Half:
        launch_dtype<__half>(lists.first, lists.second, use_buffers, hyper, stream);
        break;
      case ScalarType::BFloat16:
        launch_dtype<__nv_bfloat16>(lists.first, lists.second, use_buffers, hyper, stream);
        break;
      default:
        STD_TORCH_CHECK(
            false, "masked_sgd_: unsupported dtype ", torch::headeronly::toString(dtype));
    }
  }

  // Write back the contiguous copies; copy_ runs on the same current stream,
  // after the kernels.
  for (Operand& op : operands) {
    if (op.copy_param_to != nullptr) {
      torch::stable::copy_(*op.copy_param_to, op.param);
    }
    if (op.copy_buffer_to != nullptr) {
      torch::stable::copy_(*op.copy_buffer_to, op.buffer);
    }
  }
}

} // namespace dau::ops

STABLE_TORCH_LIBRARY_IMPL(dau, CUDA, m) {
  m.impl("masked_sgd_", TORCH_BOX(&dau::ops::masked_sgd_cuda));
}
