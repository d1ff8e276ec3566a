"""Plot peak RSS vs slide size from memory_scaling.py's JSON (one line per variant).

python benchmarks/plot_memory.py docs/memory-scaling-cpu-trim.json docs/images/rss-vs-slide-size.png
"""

import json
import sys

from napari_shisrcnet.figures import pyplot, save

with open(sys.argv[1]) as handle:
    data = json.load(handle)
variants = {}
for row in data["results"]:
    variants.setdefault(row.get("variant", "engine"), []).append(row)
labels = {"trim": "peak RSS (engine)", "no-trim": "peak RSS, malloc_trim off"}
plt = pyplot()
figure, axis = plt.subplots(figsize=(5, 3.2))
for (variant, rows), marker in zip(variants.items(), "o^v", strict=False):
    sides = [r["side_px"] / 1000 for r in rows]
    axis.plot(
        sides, [r["peak_rss_mb"] for r in rows], marker + "-", label=labels.get(variant, "peak RSS")
    )
first = next(iter(variants.values()))
axis.plot(
    [r["side_px"] / 1000 for r in first],
    [r["rss_after_import_mb"] for r in first],
    "s--",
    label="after imports",
)
axis.axhline(1536, color="grey", lw=0.8, ls=":", label="1.5 GB goal")
axis.set_xlabel("slide side (thousand px), whole level 0, x2 SR")
axis.set_ylabel("MB")
axis.set_ylim(0, 1700)
axis.legend(fontsize=8)
save(figure, sys.argv[2])
print("wrote", sys.argv[2])
