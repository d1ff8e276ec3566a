"""Plot output MP/s vs batch size (ceiling and engine) from bench_tiling.py JSON files.

python benchmarks/plot_batch_sweep.py OUT.png BENCH.json [BENCH.json ...]
"""

import json
import sys

from napari_shisrcnet.figures import pyplot, save

out, *inputs = sys.argv[1:]
plt = pyplot()
figure, axis = plt.subplots(figsize=(5.5, 3.6))
values = []
for path in inputs:
    with open(path) as handle:
        run = json.load(handle)
    sweep = run["batch_sweep"]
    sizes = [row["batch_size"] for row in sweep]
    label = run["device"] + (" compiled" if run.get("compiled") else "")
    values += [r[k] for r in sweep for k in ("ceiling_mpps", "engine_mpps")]
    axis.plot(sizes, [r["ceiling_mpps"] for r in sweep], "--o", label=f"{label}: model only")
    axis.plot(sizes, [r["engine_mpps"] for r in sweep], "-o", label=f"{label}: engine end to end")
axis.set_xscale("log", base=2)
if max(values) > 10 * min(values):  # CPU and GPU runs together
    axis.set_yscale("log")
else:
    axis.set_ylim(0, 1.15 * max(values))
axis.set_xlabel("tiles per batch (256 px cores + 32 px halo)")
axis.set_ylabel("output megapixels / s")
axis.set_title("x2 SRMFENet (64 ch) throughput vs batch size")
axis.grid(True, which="both", alpha=0.3)
axis.legend(fontsize=7)
save(figure, out)
print("wrote", out)
