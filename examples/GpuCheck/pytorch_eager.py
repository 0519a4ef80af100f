#!/usr/bin/env python3
"""PyTorch eager baseline for SsmGen's GPU training step.

Times one full training step (training-mode forward, mean softmax cross-entropy, backward, clip grad
norm to 1.0, AdamW) of the same two models that the C# GPU path runs, with plain torch ops only: no
custom kernels, no torch.compile, nothing beyond torch and the standard library.

  smnist-s4d  the sMNIST S4D stack (examples/SequentialMnist/Models.cs): Input 1, H 128, 4 S4D blocks,
              N 64, Lin init, ZOH, dropout 0.1, mean pooling, 10 classes; batch 64, length 784.
  mamba       a Mamba stack (MambaBench in examples/GpuCheck/Models.cs): Vocab 16, H 256, N 16, expand 2,
              conv 4, dt rank 16, 2 blocks, per-token output; batch 16, length 1024.
  mamba-lm    the byte-level Mamba LM of the CPU benchmarks (MambaStackBench in tests/SsmGen.Benchmarks/Models.cs):
              Vocab 256, H 256, N 16, expand 2, conv 4, dt rank 16, 4 blocks, 256 outputs; batch 8, length 256.

Architecture, parameter names and optimizer groups mirror src/SsmGen/Reference (ReferenceModel.cs,
ParameterLayout.cs). Usage:

  python3 pytorch_eager.py --bench all --device cuda --warmup 3 --steps 10
  python3 pytorch_eager.py --bench all --device cpu --batch 2 --length 32 --blocks 1 --warmup 1 --steps 2
  python3 pytorch_eager.py --bench mamba-lm --device cpu --serve     (timings on request, one line per request)

With --serve the script builds the model, then answers each line read from stdin, "train K" or "forward K", with
the milliseconds K training steps (or K forwards without gradients, in eval mode) took, one number per line: the
CPU benchmarks interleave these requests with windows of their own steps so both sides share the same moments.

Prints one JSON line per benchmark.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# nn.Linear / nn.Conv1d / nn.Embedding default inits already equal the reference's
# (U(±1/√fan_in) for weights and biases, N(0, 1) for embeddings), so only the SSM tensors are set by hand.


class S4DMixer(nn.Module):
    """S4D (ZOH, B fixed at 1 as with TrainB = false) plus the block's output_linear H→2H."""

    def __init__(self, h, n, dt_min=1e-3, dt_max=1e-1):
        super().__init__()
        half = n // 2
        self.log_dt = nn.Parameter(torch.rand(h) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        # S4D-Lin: A_n = -1/2 + iπn, the same for every channel.
        self.log_A_real = nn.Parameter(torch.full((h, half), math.log(0.5)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(half, dtype=torch.float32).repeat(h, 1))
        # C stored as (H, N/2, 2) real pairs, like the reference's layout; complex N(0, 1) overall.
        self.C = nn.Parameter(torch.randn(h, half, 2) * math.sqrt(0.5))
        self.D = nn.Parameter(torch.randn(h))
        self.output_linear = nn.Linear(h, 2 * h)

    def kernel(self, length):
        dt = torch.exp(self.log_dt)                                   # (H)
        A = torch.complex(-torch.exp(self.log_A_real), self.A_imag)   # (H, N/2)
        dtA = A * dt.unsqueeze(-1)
        W = torch.view_as_complex(self.C) * (torch.exp(dtA) - 1.0) / A  # C·B̄ with B = 1
        pos = torch.arange(length, device=dtA.device, dtype=torch.float32)
        vandermonde = torch.exp(dtA.unsqueeze(-1) * pos)                # (H, N/2, L): Ā^l
        return 2.0 * torch.einsum("hn,hnl->hl", W, vandermonde).real  # (H, L)

    def forward(self, u):  # u: (B, L, H) -> (B, L, H), the SSM only (no output_linear)
        length = u.shape[1]
        k = self.kernel(length)
        # Causal convolution by FFT at length 2L (no wrap-around).
        uf = torch.fft.rfft(u.transpose(1, 2), n=2 * length)
        kf = torch.fft.rfft(k, n=2 * length)
        y = torch.fft.irfft(uf * kf, n=2 * length)[..., :length]
        return y.transpose(1, 2) + u * self.D


class S4DBlock(nn.Module):
    """x + Dropout(GLU(output_linear(GELU_tanh(S4D(LayerNorm(x))))))  (ReferenceModel.Run)."""

    def __init__(self, h, n, dropout):
        super().__init__()
        self.norm = nn.LayerNorm(h, eps=1e-5)
        self.mixer = S4DMixer(h, n)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        y = F.gelu(self.mixer(self.norm(x)), approximate="tanh")
        return x + self.dropout(F.glu(self.mixer.output_linear(y), dim=-1))


class S4DModel(nn.Module):
    """encoder Linear(Input→H), blocks, final LayerNorm, mean over time, decoder Linear(H→Output)."""

    def __init__(self, inputs, h, outputs, blocks, n, dropout):
        super().__init__()
        self.encoder = nn.Linear(inputs, h)
        self.layers = nn.ModuleList([S4DBlock(h, n, dropout) for _ in range(blocks)])
        self.norm_f = nn.LayerNorm(h, eps=1e-5)
        self.decoder = nn.Linear(h, outputs)

    def forward(self, x):  # (B, L, Input) -> (B, Output)
        x = self.encoder(x)
        for layer in self.layers:
            x = layer(x)
        return self.decoder(self.norm_f(x).mean(dim=1))


class RMSNorm(nn.Module):
    """x / √(mean(x²) + eps) · weight, no bias (written out: nn.RMSNorm needs torch ≥ 2.4)."""

    def __init__(self, h, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(h))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


def selective_scan_ref(u, delta, A, Bt, Ct, D):
    """The eager reference scan: u, delta (B, L, E); A (E, N); Bt, Ct (B, L, N); D (E) -> (B, L, E)."""
    batch, length, e = u.shape
    deltaA = torch.exp(delta.unsqueeze(-1) * A)                  # (B, L, E, N)
    deltaB_u = (delta * u).unsqueeze(-1) * Bt.unsqueeze(2)       # (B, L, E, N)
    h = u.new_zeros(batch, e, A.shape[1])
    ys = []
    for dA, dBu, c in zip(deltaA.unbind(1), deltaB_u.unbind(1), Ct.unbind(1)):
        h = dA * h + dBu
        ys.append(torch.einsum("ben,bn->be", h, c))
    return torch.stack(ys, dim=1) + u * D


class MambaMixer(nn.Module):
    """in_proj, causal depthwise conv, SiLU, x_proj, dt_proj + softplus, selective scan, gate, out_proj."""

    def __init__(self, h, n, expand, conv_width, dt_rank, dt_min=1e-3, dt_max=1e-1):
        super().__init__()
        e = expand * h
        self.n, self.dt_rank = n, dt_rank
        self.in_proj = nn.Linear(h, 2 * e, bias=False)
        self.conv1d = nn.Conv1d(e, e, conv_width, groups=e, padding=conv_width - 1)
        self.x_proj = nn.Linear(e, dt_rank + 2 * n, bias=False)
        self.dt_proj = nn.Linear(dt_rank, e)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(e, 1))
        self.D = nn.Parameter(torch.ones(e))
        self.out_proj = nn.Linear(e, h, bias=False)
        with torch.no_grad():
            # softplus⁻¹ of Δ log-uniform in [dt_min, dt_max], floored at 1e-4.
            dt = torch.exp(torch.rand(e) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=1e-4)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x):  # (B, L, H) -> (B, L, H)
        length = x.shape[1]
        xi, z = self.in_proj(x).chunk(2, dim=-1)
        u = F.silu(self.conv1d(xi.transpose(1, 2))[..., :length]).transpose(1, 2)  # causal: keep the first L
        delta, Bt, Ct = self.x_proj(u).split([self.dt_rank, self.n, self.n], dim=-1)
        delta = F.softplus(self.dt_proj(delta))
        y = selective_scan_ref(u, delta, -torch.exp(self.A_log), Bt, Ct, self.D)
        return self.out_proj(y * F.silu(z))


class MambaBlock(nn.Module):
    """x + mixer(RMSNorm(x)): pre-norm residual, no dropout (MambaLayer default Norm = RmsNorm)."""

    def __init__(self, h, **kw):
        super().__init__()
        self.norm = RMSNorm(h)
        self.mixer = MambaMixer(h, **kw)

    def forward(self, x):
        return x + self.mixer(self.norm(x))


class MambaBackbone(nn.Module):
    def __init__(self, vocab, h, blocks, **kw):
        super().__init__()
        self.embeddings = nn.Embedding(vocab, h)
        self.layers = nn.ModuleList([MambaBlock(h, **kw) for _ in range(blocks)])
        self.norm_f = RMSNorm(h)  # final norm is RMSNorm when every block is an RMSNorm Mamba block

    def forward(self, tokens):
        x = self.embeddings(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.norm_f(x)


class MambaModel(nn.Module):
    """The reference's all-Mamba layout: backbone.{embeddings,layers,norm_f}, lm_head without bias, no pooling."""

    def __init__(self, vocab, h, outputs, blocks, **kw):
        super().__init__()
        self.backbone = MambaBackbone(vocab, h, blocks, **kw)
        self.lm_head = nn.Linear(h, outputs, bias=False)

    def forward(self, tokens):  # (B, L) -> (B, L, Output)
        return self.lm_head(self.backbone(tokens))


def optimizer_group(name):
    """ParameterLayout's groups: 'ssm' (log Δ, A, B of S4D), 'nodecay' (biases, norms, D, Mamba's A_log), 'default'."""
    last = name.rsplit(".", 1)[-1]
    if last in ("log_dt", "log_A_real", "A_imag", "B"):
        return "ssm"
    if last in ("bias", "D", "A_log") or name.endswith("norm.weight") or name.endswith("norm_f.weight"):
        return "nodecay"
    return "default"


def make_optimizer(model, lr=1e-2, weight_decay=0.01, ssm_lr=1e-3):
    settings = {"default": (lr, weight_decay), "nodecay": (lr, 0.0), "ssm": (ssm_lr, 0.0)}
    params = {g: [] for g in settings}
    for name, p in model.named_parameters():
        params[optimizer_group(name)].append(p)
    groups = [{"params": ps, "lr": settings[g][0], "weight_decay": settings[g][1]} for g, ps in params.items() if ps]
    return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)


def train_step(model, opt, inputs, targets):
    opt.zero_grad(set_to_none=True)
    logits = model(inputs)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss


def build(bench, device, batch, length, blocks):
    """Model and one fixed random batch (made once, on the device)."""
    if bench == "smnist-s4d":
        batch, length, blocks = batch or 64, length or 784, blocks or 4
        model = S4DModel(inputs=1, h=128, outputs=10, blocks=blocks, n=64, dropout=0.1)
        inputs = torch.rand(batch, length, 1, device=device)
        targets = torch.randint(0, 10, (batch,), device=device)
    else:
        lm = bench == "mamba-lm"
        batch, length = batch or (8 if lm else 16), length or (256 if lm else 1024)
        blocks, vocab, h = blocks or (4 if lm else 2), 256 if lm else 16, 256
        model = MambaModel(vocab=vocab, h=h, outputs=vocab, blocks=blocks, n=16, expand=2, conv_width=4,
                           dt_rank=math.ceil(h / 16))
        inputs = torch.randint(0, vocab, (batch, length), device=device)
        targets = torch.randint(0, vocab, (batch, length), device=device)
    return model.to(device), inputs, targets, batch, length, blocks


def run(bench, device, args):
    torch.manual_seed(args.seed)
    model, inputs, targets, batch, length, blocks = build(bench, device, args.batch, args.length, args.blocks)
    model.train()
    opt = make_optimizer(model)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        train_step(model, opt, inputs, targets)
    times = []
    for _ in range(args.steps):
        sync()
        t0 = time.perf_counter()
        loss = train_step(model, opt, inputs, targets)
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return {
        "bench": bench,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "batch": batch,
        "length": length,
        "blocks": blocks,
        "params": sum(p.numel() for p in model.parameters()),
        "ms_per_step": statistics.median(times),
        "ms_min": min(times),
        "steps": len(times),
        "tf32": args.tf32,
        "loss": float(loss),  # sanity check only: finite and near ln(classes) at the start
    }


def loaded_blas():
    """The BLAS library this process runs its matmuls on (Debian picks it through alternatives at run time)."""
    torch.ones(8, 8) @ torch.ones(8, 8)
    with open("/proc/self/maps") as maps:
        names = {line.split()[-1].rsplit("/", 1)[-1] for line in maps if "blas" in line.lower()}
    return ", ".join(sorted(names)) or "none found"


def serve(bench, device, args):
    """Answer "train K" / "forward K" lines from stdin with the milliseconds they took (see the module text)."""
    # Debian's build starts with one OpenMP thread here whatever the core count: ask for every core.
    torch.set_num_threads(args.threads or os.cpu_count())
    torch.manual_seed(args.seed)
    model, inputs, targets, batch, length, blocks = build(bench, device, args.batch, args.length, args.blocks)
    opt = make_optimizer(model)
    print(json.dumps({"bench": bench, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "blas": loaded_blas(),
                      "batch": batch, "length": length, "blocks": blocks,
                      "params": sum(p.numel() for p in model.parameters())}), flush=True)
    for line in sys.stdin:  # until the benchmark closes the pipe
        what, count = line.split()
        t0 = time.perf_counter()
        if what == "train":
            model.train()
            for _ in range(int(count)):
                train_step(model, opt, inputs, targets)
        else:
            model.eval()
            with torch.no_grad():
                for _ in range(int(count)):
                    model(inputs)
        print(f"{(time.perf_counter() - t0) * 1e3:.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", choices=["smnist-s4d", "mamba", "mamba-lm", "all"], default="all")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=0, help="override the benchmark's batch size")
    ap.add_argument("--length", type=int, default=0, help="override the benchmark's sequence length")
    ap.add_argument("--blocks", type=int, default=0, help="override the benchmark's number of blocks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--serve", action="store_true", help="time steps on request from stdin (one benchmark)")
    ap.add_argument("--threads", type=int, default=0, help="with --serve: CPU threads (default: every core)")
    ap.add_argument("--tf32", action="store_true",
                    help="allow TF32 matmuls/convs (off by default: the C# path uses plain FP32 cublasSgemm)")
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be at least 1")

    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    if args.serve:
        if args.bench == "all":
            ap.error("--serve times one benchmark")
        serve(args.bench, device, args)
        return
    benches = ["smnist-s4d", "mamba"] if args.bench == "all" else [args.bench]
    for bench in benches:
        print(json.dumps(run(bench, device, args)), flush=True)


if __name__ == "__main__":
    main()
