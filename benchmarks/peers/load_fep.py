"""A fep model in PyTorch: builds the network from the metadata of a file written by
`fep export`, loads its weights, and computes R, D, C and accuracy exactly as fep does,
on the very inputs and noise `fep evaluate --dump-inputs` recorded.

    fep export --checkpoint runs/train-source/checkpoint.ckpt --out model.safetensors
    fep evaluate --checkpoint runs/train-source/checkpoint.ckpt --limit 1000 \\
        --dump-inputs inputs.safetensors --json > fep.json
    python benchmarks/peers/load_fep.py model.safetensors --inputs inputs.safetensors

prints fep's and PyTorch's R, D, C and accuracy and their relative differences, and exits
with status 1 where one exceeds --tolerance (default 1e-4).

The networks are those of torch_reference.py (mnist-small is its `Reference`, mnist-paper its
`Paper`), for any latent size, decoder, prior and classifier, and cifar-resnet; the names are
the keys of the file (`enc1.weight`, ...). Per example, with eps the recorded noise:

    mean, log_var = encode(x);  z = mean + exp(log_var / 2) * eps
    R = KL(N(mean, exp(log_var)) || N(0, I))            (standard-normal prior, closed form)
      = log e(z|x) - log m(z)                           (mixture and VampPrior, on the same z)
    D = -log d(x | decode(z))   summed over sub-pixels   (Bernoulli, Gaussian(sigma), logistic)
    C = -log softmax(classifier(z))[y]
    correct = argmax classifier(mean) == y

BatchNorm runs on its running statistics (`model.eval()`), as in `fep evaluate`.

The file format is read and written here with numpy alone (8-byte header length, JSON header,
little-endian data), so neither `safetensors` nor fep is needed: `load(path)` gives the
network, `save(net, path)` writes one `fep import` reads.
"""

import argparse
import json
import math
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def read_safetensors(path):
    """(tensors as numpy arrays by name, metadata dict) of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {}) or {}
    body = data[8 + n :]
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(body[start:end], dtype=dtype).reshape(info["shape"])
    return tensors, meta


def write_safetensors(path, tensors, metadata):
    """Writes numpy arrays and a string -> string metadata map as safetensors."""
    header, offset, chunks = {"__metadata__": dict(metadata)}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": NAMES[a.dtype],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        offset += len(raw)
        chunks.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def build(meta):
    """The PyTorch network of a model described by `fep export`'s metadata."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    model = json.loads(meta["model"])
    arch, latent, classes = model["architecture"], model["latent_dim"], model["num_classes"]
    decoder, prior, classifier = model["decoder"], model["prior"], model["classifier"]
    channels = json.loads(meta["image_shape"])[0]
    out = channels * (2 if decoder["kind"] == "discretized-logistic" else 1)
    eps, leak = float(meta.get("batchnorm_eps", 1e-5)), float(meta.get("leaky_relu_slope", 0.2))

    def conv(cin, cout, k, s, p):
        return nn.Conv2d(cin, cout, k, s, p)

    def deconv(cin, cout, k, s, p):
        return nn.ConvTranspose2d(cin, cout, k, s, p)

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1, self.conv2 = conv(c, c, 3, 1, 1), conv(c, c, 3, 1, 1)

        def forward(self, x):
            return x + self.conv2(F.relu(self.conv1(F.relu(x))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            getattr(self, "_init_" + arch.replace("-", "_"))()
            if classifier["kind"] == "mlp":
                self.cls_hidden = nn.Linear(latent, classifier["hidden"])
                self.cls = nn.Linear(classifier["hidden"], classes)
            else:
                self.cls = nn.Linear(latent, classes)
            self.prior = nn.Module()
            if prior["kind"] == "mixture":
                k = prior["components"]
                for name, shape in (("means", (k, latent)), ("log_vars", (k, latent)), ("logits", (k,))):
                    self.prior.register_parameter(name, nn.Parameter(torch.zeros(shape)))
            elif prior["kind"] == "vamp":
                shape = (prior["pseudo_inputs"], *json.loads(meta["image_shape"]))
                self.prior.register_parameter("pseudo_logits", nn.Parameter(torch.zeros(shape)))
            self.meta = dict(meta)

        def _init_mnist_small(self):
            self.enc1, self.enc2 = conv(channels, 32, 4, 2, 1), conv(32, 64, 4, 2, 1)
            self.enc_fc = nn.Linear(64 * 7 * 7, 2 * latent)
            self.dec_fc = nn.Linear(latent, 64 * 7 * 7)
            self.dec1, self.dec2 = deconv(64, 32, 4, 2, 1), deconv(32, out, 4, 2, 1)

        def _init_mnist_paper(self):
            self.conv1, self.conv2 = conv(channels, 64, 4, 2, 1), conv(64, 128, 4, 2, 1)
            self.conv3, self.conv4 = conv(128, 256, 3, 2, 1), conv(256, 1024, 4, 1, 0)
            self.bn_conv2 = nn.BatchNorm2d(128, eps=eps)
            self.bn_conv3 = nn.BatchNorm2d(256, eps=eps)
            self.fc, self.mean, self.log_var = nn.Linear(1024, 512), nn.Linear(512, latent), nn.Linear(512, latent)
            self.fc1, self.fc2 = nn.Linear(latent, 512), nn.Linear(512, 1024)
            self.deconv1, self.deconv2 = deconv(1024, 512, 4, 1, 0), deconv(512, 256, 3, 2, 1)
            self.deconv3, self.deconv4 = deconv(256, 128, 4, 2, 1), deconv(128, out, 4, 2, 1)
            for i, c in ((1, 512), (2, 256), (3, 128)):
                setattr(self, f"bn_deconv{i}", nn.BatchNorm2d(c, eps=eps))

        def _init_cifar_resnet(self):
            self.enc_stem = conv(channels, 32, 3, 1, 1)
            self.enc_down1, self.enc_down2 = conv(32, 64, 4, 2, 1), conv(64, 128, 4, 2, 1)
            self.enc_res1, self.enc_res2, self.enc_res3 = Residual(32), Residual(64), Residual(128)
            self.enc_fc = nn.Linear(128 * 8 * 8, 2 * latent)
            self.dec_fc = nn.Linear(latent, 128 * 8 * 8)
            self.dec_res1, self.dec_res2, self.dec_res3 = Residual(128), Residual(64), Residual(32)
            self.dec_up1, self.dec_up2 = deconv(128, 64, 4, 2, 1), deconv(64, 32, 4, 2, 1)
            self.dec_out = conv(32, out, 3, 1, 1)

        def encode(self, x):
            """Mean and log-variance [n, L] of e(z|x)."""
            if arch == "mnist-paper":
                h = F.leaky_relu(self.conv1(x), leak)
                h = F.leaky_relu(self.bn_conv2(self.conv2(h)), leak)
                h = F.leaky_relu(self.bn_conv3(self.conv3(h)), leak)
                h = F.leaky_relu(self.conv4(h), leak)
                h = F.leaky_relu(self.fc(h.flatten(1)), leak)
                return self.mean(h), self.log_var(h)
            if arch == "mnist-small":
                h = F.relu(self.enc2(F.relu(self.enc1(x))))
            else:
                h = self.enc_res1(self.enc_stem(x))
                h = self.enc_res2(self.enc_down1(h))
                h = F.relu(self.enc_res3(self.enc_down2(h)))
            stats = self.enc_fc(h.flatten(1))
            return stats[:, :latent], stats[:, latent:]

        def decode(self, z):
            """Likelihood parameters [n, C * k, H, W]."""
            if arch == "mnist-small":
                h = F.relu(self.dec_fc(z)).view(-1, 64, 7, 7)
                return self.dec2(F.relu(self.dec1(h)))
            if arch == "mnist-paper":
                h = F.relu(self.fc2(F.relu(self.fc1(z)))).view(-1, 1024, 1, 1)
                for i in (1, 2, 3):
                    h = F.relu(getattr(self, f"bn_deconv{i}")(getattr(self, f"deconv{i}")(h)))
                return self.deconv4(h)
            h = self.dec_fc(z).view(-1, 128, 8, 8)
            h = self.dec_up1(self.dec_res1(h))
            h = self.dec_up2(self.dec_res2(h))
            return self.dec_out(F.relu(self.dec_res3(h)))

        def classify(self, z):
            if classifier["kind"] == "mlp":
                return self.cls(F.relu(self.cls_hidden(z)))
            return self.cls(z)

        def prior_log_density(self, z):
            """log m(z) [n] of the learnt priors."""
            if prior["kind"] == "mixture":
                p = self.prior
                comp = diagonal_log_density(z[:, None, :], p.means[None], p.log_vars[None])
                return torch.logsumexp(comp + torch.log_softmax(p.logits, 0)[None], 1)
            pm, pv = self.encode(torch.sigmoid(self.prior.pseudo_logits))
            comp = diagonal_log_density(z[:, None, :], pm[None], pv[None])
            return torch.logsumexp(comp, 1) - math.log(pm.shape[0])

        def functionals(self, x, y, eps):
            """Per example R, D, C and 0/1 correct, as fep_models::FepModel::functionals."""
            mean, log_var = self.encode(x)
            z = mean + torch.exp(0.5 * log_var) * eps
            d = negative_log_likelihood(decoder, self.decode(z), x)
            c = -torch.log_softmax(self.classify(z), 1).gather(1, y[:, None])[:, 0]
            if prior["kind"] == "standard-normal":
                r = 0.5 * ((mean * mean + torch.exp(log_var) - log_var) - 1.0).sum(1)
            else:
                log_q = -0.5 * (eps * eps + log_var + math.log(2 * math.pi)).sum(1)
                r = log_q - self.prior_log_density(z)
            correct = (self.classify(mean).argmax(1) == y).float()
            return r, d, c, correct

    return Net()


def diagonal_log_density(z, mean, log_var):
    """log N(z; mean, diag exp(log_var)) summed over the last dimension (broadcasting)."""
    import torch

    d = (z - mean) ** 2 * torch.exp(-log_var)
    return -0.5 * (d + log_var + math.log(2 * math.pi)).sum(-1)


def softplus(x):
    import torch

    return torch.clamp_min(x, 0.0) + torch.log1p(torch.exp(-x.abs()))


def negative_log_likelihood(decoder, params, x):
    """-log d(x|z) summed over sub-pixels [n] (crates/models/src/likelihood.rs)."""
    import torch

    kind = decoder["kind"]
    if kind == "bernoulli":
        return (softplus(params) - x * params).flatten(1).sum(1)
    if kind == "gaussian":
        s = decoder["sigma"]
        sse = ((x - torch.sigmoid(params)) ** 2).flatten(1).sum(1)
        n = x[0].numel()
        return sse / (2 * s * s) + 0.5 * n * math.log(2 * math.pi * s * s)
    c = x.shape[1]
    mean, log_scale = params[:, :c], torch.clamp_min(params[:, c:], -7.0)
    x = 2 * x - 1
    centered = x - mean
    inv_s = torch.exp(-log_scale)
    plus_in, min_in = inv_s * (centered + 1 / 255), inv_s * (centered - 1 / 255)
    log_cdf_plus = plus_in - softplus(plus_in)
    log_one_minus_cdf_min = -softplus(min_in)
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_s * centered
    log_mid = mid_in - log_scale - 2 * softplus(mid_in) - math.log(127.5)
    log_delta = torch.log(torch.clamp_min(cdf_delta, 1e-12))
    log_prob = torch.where(cdf_delta < 1e-5, log_mid, log_delta)
    log_prob = torch.where(x < -0.999, log_cdf_plus, log_prob)
    log_prob = torch.where(x > 0.999, log_one_minus_cdf_min, log_prob)
    return -log_prob.flatten(1).sum(1)


def load(path):
    """The PyTorch network of a `fep export` file, weights loaded, in eval mode."""
    import torch

    tensors, meta = read_safetensors(path)
    net = build(meta)
    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: missing {missing}, unexpected {unexpected}")
    return net.eval()


def save(net, path, **changes):
    """Writes `net` (built by `build`/`load`) as a file `fep import` reads; `changes`
    overrides metadata entries (e.g. lambda="0.5")."""
    tensors = {
        k: v.detach().cpu().contiguous().numpy().astype(np.float32)
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    meta = dict(net.meta)
    meta.update({k: str(v) for k, v in changes.items()})
    write_safetensors(path, tensors, meta)


def evaluate(net, inputs, batch=500):
    """Per draw and example R, D, C, correct [K, N] on the recorded inputs and noise."""
    import torch

    images, eps = inputs["images"], inputs["eps"]
    labels = torch.from_numpy(inputs["labels"].astype(np.int64))
    k, n = eps.shape[:2]
    out = np.zeros((4, k, n), dtype=np.float32)
    with torch.no_grad():
        for d in range(k):
            for s in range(0, n, batch):
                x = torch.from_numpy(images[d, s : s + batch].copy())
                e = torch.from_numpy(eps[d, s : s + batch].copy())
                values = net.functionals(x, labels[s : s + batch], e)
                for q, v in enumerate(values):
                    out[q, d, s : s + batch] = v.numpy()
    return out


def compare(model_path, inputs_path, tolerance, threads=None):
    """fep's and PyTorch's means, their relative differences and the per-example ones."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    net = load(model_path)
    inputs, meta = read_safetensors(inputs_path)
    ours = evaluate(net, inputs).astype(np.float64)
    fep = json.loads(meta["measurement"])
    rows = []
    for q, (name, key) in enumerate(
        (("R", "rate"), ("D", "distortion"), ("C", "classification"), ("accuracy", "correct"))
    ):
        reference = fep["accuracy"] if name == "accuracy" else fep[key]
        value = float(ours[q].mean(0).mean())  # per-example means over draws, then examples
        worst = float(np.max(np.abs(ours[q] - inputs[key].astype(np.float64))))
        rel = abs(value - reference) / max(abs(reference), 1e-12)
        rows.append({"quantity": name, "fep": reference, "torch": value, "relative": rel,
                     "max_abs_per_example": worst})
    k, n = inputs["eps"].shape[:2]
    return {
        "model": model_path,
        "inputs": inputs_path,
        "examples": int(n),
        "draws": int(k),
        "torch": torch.__version__,
        "tolerance": tolerance,
        "ok": all(r["relative"] <= tolerance for r in rows),
        "rows": rows,
    }


def summary(root):
    """A markdown table of the comparisons under `root` (<root>/<name>/torch.json)."""
    import glob
    import os

    lines = [
        "| model | examples x draws | quantity | fep | PyTorch | relative difference |",
        "|---|---|---|---|---|---|",
    ]
    for path in sorted(glob.glob(os.path.join(root, "*", "torch.json"))):
        with open(path) as f:
            r = json.load(f)
        name = os.path.basename(os.path.dirname(path))
        for row in r["rows"]:
            lines.append(
                f"| {name} | {r['examples']} x {r['draws']} | {row['quantity']} | {row['fep']:.8g} "
                f"| {row['torch']:.8g} | {row['relative']:.1e} |"
            )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", help="safetensors file written by `fep export`")
    ap.add_argument("--inputs", help="file written by `fep evaluate --dump-inputs`")
    ap.add_argument("--summary", metavar="DIR", help="print the table of DIR/*/torch.json and exit")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="largest relative difference")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads")
    ap.add_argument("--json", metavar="PATH", help="also write the comparison as JSON")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary(args.summary))
        return
    if not (args.model and args.inputs):
        ap.error("needs a model and --inputs (or --summary DIR)")
    result = compare(args.model, args.inputs, args.tolerance, args.threads)
    print(f"{args.model} on {result['examples']} examples x {result['draws']} draws "
          f"(torch {result['torch']}):")
    print(f"{'':>9} {'fep':>14} {'torch':>14} {'relative':>10} {'max |diff| of one example':>26}")
    for r in result["rows"]:
        print(f"{r['quantity']:>9} {r['fep']:>14.8g} {r['torch']:>14.8g} {r['relative']:>10.2e} "
              f"{r['max_abs_per_example']:>26.2e}")
    print(("agree within" if result["ok"] else "do NOT agree within"), args.tolerance)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
