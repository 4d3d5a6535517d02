"""oneDNN's NHWC 1×1 strided convolution backward, with torch alone (no dau code).

A 1×1 convolution with stride 2 whose input and weight are channels-last, and whose input has
fewer channels than oneDNN's channel block (16 on AVX-512, 8 on AVX2), makes oneDNN's
``jit_1x1`` backward-weights kernel write past its workspace ("reduce to unit stride") buffer:
the process dies (SIGSEGV, SIGABRT from glibc's ``double free or corruption``) or the weight
gradient is wrong. Which batch sizes hit it depends on the thread split (odd ones, mostly).

    python onednn_nhwc_1x1_repro.py --in-channels 8 --layout channels_last

checks batch sizes 1..33 against torch's native (non-oneDNN) convolution; exit 0 when every
gradient matches, 1 when one does not; a crash ends it by a signal.
"""

import argparse
import warnings

import torch
import torch.nn.functional as F


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-channels", type=int, default=8)
    parser.add_argument("--out-channels", type=int, default=16)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--kernel", type=int, default=1)
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--layout", choices=("channels_last", "default"), default="channels_last")
    parser.add_argument("--batches", type=int, nargs=2, default=(1, 33), metavar=("FIRST", "LAST"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="TF32 acceleration")  # from mkldnn.flags()
    fmt = torch.channels_last if args.layout == "channels_last" else torch.contiguous_format
    print(f"torch {torch.__version__}, ATen CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads; conv {args.in_channels}->{args.out_channels} "
          f"k{args.kernel} s{args.stride} {args.size}x{args.size}, {args.layout}", flush=True)
    torch.manual_seed(0)
    wrong = []
    for batch in range(args.batches[0], args.batches[1] + 1):
        x = torch.randn(batch, args.in_channels, args.size, args.size)
        w = torch.randn(args.out_channels, args.in_channels, args.kernel, args.kernel)
        grads = []
        for native in (False, True):
            xi = x.contiguous(memory_format=fmt if not native else torch.contiguous_format)
            wi = w.contiguous(memory_format=fmt if not native else torch.contiguous_format)
            xi.requires_grad_()
            wi.requires_grad_()
            with torch.backends.mkldnn.flags(enabled=not native):
                F.conv2d(xi, wi, stride=args.stride, padding=args.kernel // 2).square().sum().backward()
            grads.append((xi.grad, wi.grad))
        (gx, gw), (rx, rw) = grads
        scale_x, scale_w = float(rx.abs().max()), float(rw.abs().max())
        if (float((gx - rx).abs().max()) > 1e-4 * scale_x
                or float((gw - rw).abs().max()) > 1e-4 * scale_w):
            wrong.append(batch)
        print(f"batch {batch}: {'WRONG' if wrong and wrong[-1] == batch else 'ok'}", flush=True)
    print(f"wrong gradients at batch sizes {wrong}" if wrong else "every gradient matches")
    raise SystemExit(1 if wrong else 0)


if __name__ == "__main__":
    main()
