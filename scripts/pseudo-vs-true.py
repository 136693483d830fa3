#!/usr/bin/env python3
"""How well pseudo-queries rank retrieval pipelines: Kendall's tau between the nDCG@10 of each
candidate on pseudo-queries (no labels) and on the labelled queries, and the true nDCG@10 of the
candidate the pseudo-queries would recommend against the best one.

    isovec eval retrieval --data D --pipelines P --json true.json
    isovec eval retrieval --data D --pipelines P --pseudo 300 --json pseudo.json
      (or: isovec advise --store S --collection C --json pseudo.json, on the same corpus)
    python scripts/pseudo-vs-true.py true.json pseudo.json [--search hnsw|exact]

With an `isovec advise` JSON, the recommendation is advise's (the simplest candidate within noise
of the best), else the best pseudo score; the label-free fusion of each dense pipeline is checked
against the best fusion of its hybrid rows on the labelled queries.
"""

import argparse
import itertools
import json


def kendall_tau(xs, ys):
    """Kendall's tau-b of two equally long score lists (ties counted as neither)."""
    concordant = discordant = ties_x = ties_y = 0
    for (x1, y1), (x2, y2) in itertools.combinations(zip(xs, ys), 2):
        dx, dy = x1 - x2, y1 - y2
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif (dx > 0) == (dy > 0):
            concordant += 1
        else:
            discordant += 1
    n1 = concordant + discordant + ties_x
    n2 = concordant + discordant + ties_y
    return (concordant - discordant) / (n1 * n2) ** 0.5 if n1 and n2 else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("true_json")
    parser.add_argument("pseudo_json")
    parser.add_argument("--search", default="hnsw", choices=["hnsw", "exact"])
    args = parser.parse_args()
    rows = {}
    for which, path in (("true", args.true_json), ("pseudo", args.pseudo_json)):
        for r in json.load(open(path))["rows"]:
            rows.setdefault(r["pipeline"], {})[which] = 100 * r[args.search]["ndcg10"]
    names = [n for n, v in rows.items() if len(v) == 2]
    true = [rows[n]["true"] for n in names]
    pseudo = [rows[n]["pseudo"] for n in names]
    print(f"| pipeline | pseudo nDCG@10 | true nDCG@10 |\n|---|---:|---:|")
    for n in sorted(names, key=lambda n: -rows[n]["pseudo"]):
        print(f"| {n} | {rows[n]['pseudo']:.2f} | {rows[n]['true']:.2f} |")
    advice = json.load(open(args.pseudo_json)).get("advice")
    recommended = advice["recommended"] if advice else max(names, key=lambda n: rows[n]["pseudo"])
    best = max(names, key=lambda n: rows[n]["true"])
    if advice:
        print("\n| dense | label-free fusion | its true nDCG@10 | best fusion (labels) | its true nDCG@10 | gap |")
        print("|---|---|---:|---|---:|---:|")
        for dense, chosen in advice["fusions"].items():
            family = [n for n in names if n == f"hybrid:{dense}" or n.startswith(f"hybrid:{dense}@")]
            if chosen not in rows or not family:
                continue
            top = max(family, key=lambda n: rows[n]["true"])
            gap = rows[top]["true"] - rows[chosen]["true"]
            print(f"| {dense} | {chosen} | {rows[chosen]['true']:.2f} | {top} | {rows[top]['true']:.2f} | {gap:.2f} |")
        print()
    print(
        json.dumps(
            {
                "candidates": len(names),
                "kendall_tau": round(kendall_tau(pseudo, true), 3),
                "recommended": recommended,
                "recommended_true_ndcg10": round(rows[recommended]["true"], 2),
                "best": best,
                "best_true_ndcg10": round(rows[best]["true"], 2),
                "gap": round(rows[best]["true"] - rows[recommended]["true"], 2),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
