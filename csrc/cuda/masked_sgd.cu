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

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <torch/csrc/inductor/aoti_torch/c/shim.h>
#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/macros.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace dau::ops {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

namespace {

constexpr int kMaxTensors = 24;    // tensors per launch
constexpr int kMaxBlocks = 320;    // blocks per launch
constexpr int kThreads = 256;      // threads per block
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

// Arithmetic type and conversions of each storage type.
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

__device__ __forceinline__ bool is_active(uint8_t m) {
  return m != 0;
}
template <typename T>
__device__ __forceinline__ bool is_active(T m) {
  return to_acc(m) != 0;
}

// One block updates elements [chunk * kChunk, (chunk + 1) * kChunk) of one
// tensor. The flags in `hyper` are the same for every thread, so their
// branches do not diverge.
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

  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
    const bool active = mask == nullptr || is_active(mask[i]);
    if (!active) {
      // The param keeps its exact bits; the momentum buffer is cleared.
      if (hyper.phase != kNoMomentum) {
        buffer[i] = from_acc<scalar_t>(acc_t(0));
      }
      continue;
    }
    const acc_t p = to_acc(param[i]);
    acc_t g = to_acc(grad[i]);
    if (hyper.maximize) {
      g = -g;
    }
    if (decay) {
      g = g + weight_decay * p;
    }
    if (hyper.phase != kNoMomentum) {
      const acc_t b = hyper.phase == kFirstStep ? g : momentum * to_acc(buffer[i]) + keep * g;
      buffer[i] = from_acc<scalar_t>(b);
      g = hyper.nesterov ? g + momentum * b : b;
    }
    param[i] = from_acc<scalar_t>(p - lr * g);
  }
}

// ---------------------------------------------------------------- checks ----

std::string shape_string(const Tensor& t) {
  std::ostringstream out;
  out << "[";
  for (int64_t d = 0; d < t.dim(); ++d) {
    out << (d ? ", " : "") << t.size(d);
  }
  out << "]";
  return out.str();
}

std::string device_string(const Tensor& t) {
  std::ostringstream out;
  out << (t.is_cpu() ? "cpu" : (t.is_cuda() ? "cuda" : "other"));
  if (!t.is_cpu()) {
    out << ":" << t.get_device_index();
  }
  return out.str();
}

bool same_shape(const Tensor& a, const Tensor& b) {
  if (a.dim() != b.dim()) {
    return false;
  }
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) != b.size(d)) {
      return false;
    }
  }
  return true;
}

bool same_strides(const Tensor& a, const Tensor& b) {
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) != 1 && a.stride(d) != b.stride(d)) {
      return false;
    }
  }
  return true;
}

bool is_non_overlapping_and_dense(const Tensor& t) {
  const int64_t ndim = t.dim();
  std::vector<int64_t> dims(static_cast<size_t>(ndim));
  std::iota(dims.begin(), dims.end(), int64_t{0});
  std::sort(dims.begin(), dims.end(), [&](int64_t a, int64_t b) {
    return t.stride(a) < t.stride(b);
  });
  int64_t expected = 1;
  for (const int64_t d : dims) {
    const int64_t size = t.size(d);
    if (size == 1) {
      continue;
    }
    if (t.stride(d) != expected) {
      return false;
    }
    expected *= size;
  }
  return true;
}

bool has_internal_overlap(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) > 1 && t.stride(d) == 0) {
      return true;
    }
  }
  return false;
}

bool is_supported_dtype(ScalarType dtype) {
  return dtype == ScalarType::Float || dtype == ScalarType::Double ||
      dtype == ScalarType::Half || dtype == ScalarType::BFloat16;
}

void check_arguments(
    const std::vector<Tensor>& params,
    const std::vector<Tensor>& grads,
    const std::vector<Tensor>& buffers,
    const std::vector<std::optional<Tensor>>& masks,
    double momentum,
    double dampening,
    bool nesterov) {
  const size_t n = params.size();
  STD_TORCH_CHECK(
      grads.size() == n,
      "masked_sgd_: got ", grads.size(), " grads for ", n, " params; pass one grad per param");
  if (momentum != 0.0) {
    STD_TORCH_CHECK(
        buffers.size() == n,
        "masked_sgd_: momentum is ", momentum, " so one momentum buffer per param is needed, got ",
        buffers.size(), " buffers for ", n, " params");
  } else {
    STD_TORCH_CHECK(
        buffers.empty() || buffers.size() == n,
        "masked_sgd_: got ", buffers.size(), " momentum buffers for ", n,
        " params; pass none or one per param");
  }
  STD_TORCH_CHECK(
      masks.empty() || masks.size() == n,
      "masked_sgd_: got ", masks.size(), " masks for ", n,
      " params; pass none (all dense) or one per param (None = dense)");
  STD_TORCH_CHECK(
      !nesterov || (momentum > 0.0 && dampening == 0.0),
      "masked_sgd_: Nesterov momentum requires momentum > 0 and dampening == 0, got momentum=",
      momentum, " dampening=", dampening);

  const bool use_buffers = momentum != 0.0;
  for (size_t i = 0; i < n; ++i) {
    const Tensor& p = params[i];
    STD_TORCH_CHECK(p.defined(), "masked_sgd_: params[", i, "] is undefined");
    STD_TORCH_CHECK(
        p.layout() == torch::headeronly::Layout::Strided,
        "masked_sgd_: params[", i, "] must be a strided (dense) tensor");
    STD_TORCH_CHECK(
        p.is_cuda(), "masked_sgd_: the CUDA kernel got params[", i, "] on ", device_string(p),
        "; all tensors of one call must be on one device");
    STD_TORCH_CHECK(
        p.get_device_index() == params[0].get_device_index(),
        "masked_sgd_: params[", i, "] is on ", device_string(p), " but params[0] is on ",
        device_string(params[0]), "; all tensors of one call must be on one device");
    const ScalarType dtype = p.scalar_type();
    STD_TORCH_CHECK(
        is_supported_dtype(dtype),
        "masked_sgd_: params[", i, "] has dtype ", torch::headeronly::toString(dtype),
        "; supported are float32, float64, float16 and bfloat16");
    STD_TORCH_CHECK(
        !has_internal_overlap(p),
        "masked_sgd_: params[", i, "] has several elements in one memory location "
        "(an expanded view); it cannot be updated in place");

    auto check_like = [&](const Tensor& t, const char* name, bool same_dtype) {
      STD_TORCH_CHECK(t.defined(), "masked_sgd_: ", name, "[", i, "] is undefined");
      STD_TORCH_CHECK(
          t.layout() == torch::headeronly::Layout::Strided,
          "masked_sgd_: ", name, "[", i, "] must be a strided (dense) tensor");
      STD_TORCH_CHECK(
          same_shape(p, t),
          "masked_sgd_: ", name, "[", i, "] has shape ", shape_string(t), " but params[", i,
          "] has shape ", shape_string(p));
      STD_TORCH_CHECK(
          t.is_cuda() && t.get_device_index() == p.get_device_index(),
          "masked_sgd_: ", name, "[", i, "] is on ", device_string(t), " but params[", i,
          "] is on ", device_string(p));
      if (same_dtype) {
        STD_TORCH_CHECK(
            t.scalar_type() == dtype,
            "masked_sgd_: ", name, "[", i, "] has dtype ",
            torch::headeronly::toString(t.scalar_type()), " but params[", i, "] has dtype ",
            torch::headeronly::toString(dtype));
      }
    };
    check_like(grads[i], "grads", true);
    if (use_buffers) {
      check_like(buffers[i], "momentum_buffers", true);
      STD_TORCH_CHECK(
          !has_internal_overlap(buffers[i]),
          "masked_sgd_: momentum_buffers[", i, "] has several elements in one memory "
          "location (an expanded view); it cannot be updated in place");
    }
    if (!masks.empty() && masks[i].has_value()) {
      const Tensor& m = *masks[i];
      check_like(m, "masks", false);
      const ScalarType mdtype = m.scalar_type();
      STD_TORCH_CHECK(
          mdtype == ScalarType::Bool || mdtype == ScalarType::Byte || mdtype == dtype,
          "masked_sgd_: masks[", i, "] has dtype ", torch::headeronly::toString(mdtype),
          "; a mask must be bool, uint8 or the dtype of its param (",
          torch::headeronly::toString(dtype), ")");
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
  check_arguments(params, grads, momentum_buffers, masks, momentum, dampening, nesterov);
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
  void* stream_ptr = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device, &stream_ptr));
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);

  std::vector<Operand> operands;
  operands.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor& param = params[i];
    const Tensor& grad = grads[i];
    const bool has_mask = !masks.empty() && masks[i].has_value();
    bool direct = is_non_overlapping_and_dense(param) && same_strides(param, grad);
    if (use_buffers) {
      direct = direct && same_strides(param, momentum_buffers[i]);
    }
    if (has_mask) {
      direct = direct && same_strides(param, *masks[i]);
    }
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
