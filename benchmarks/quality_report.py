"""The README's quality table from `make quality`'s run directories (runs.jsonl of each sweep).

    python benchmarks/quality_report.py runs/quality

Rows: base, the default (min_scale 0.5, smoothness 10, scale mode), the mildest setting `--target` found,
bias mode and lower mode at the default. Each cell is `value [low, high] (n)`; a blank cell was not measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = [
    ("no_chinese:chinese-elicit", "no_chinese (chinese-elicit)"),
    ("no_chinese:korean-open", "no_chinese (ko-open)"),
    ("pass@1:humaneval", "HumanEval pass@1"),
    ("acc:mmlu", "MMLU (generative)"),
    ("acc:korean", "Korean choice (generative)"),
    ("identical:korean-open", "ko-open identical to base"),
    ("bertscore_base:korean-open", "ko-open BERTScore to base"),
    ("identical:korean", "ko closed items identical"),
    ("identical:mtbench", "en identical to base"),
    ("language:korean-open", "language ko-open"),
    ("language:mtbench", "language en"),
    ("language:japanese", "language ja"),
    ("no_chinese:korean-open@0.7", "no_chinese ko-open, T=0.7"),
    ("no_chinese:korean-open@1.0", "no_chinese ko-open, T=1.0"),
]


def records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def cells_at(directory: Path, min_scale: float, suffix: str = "") -> dict[str, str]:
    cells = {}
    for record in records(directory / "runs.jsonl"):
        if abs(record["min_scale"] - min_scale) > 1e-9 or record.get("smoothness") != 10.0:
            continue
        for metric, value in record["scores"].items():
            low, high = record["intervals"][metric]
            cells[f"{metric}:{record['dataset']}{suffix}"] = (
                f"{value:.3f} [{low:.2f}, {high:.2f}] ({record['n']})"
            )
    return cells


def main(root: Path) -> None:
    found = None
    target = root / "target.json"
    if target.is_file():
        found = (json.loads(target.read_text(encoding="utf-8")).get("found") or {}).get("min_scale")
    rows = [
        ("base", root / "scale", 1.0, "scale"),
        ("default (0.5, 10)", root / "scale", 0.5, "scale"),
        *([(f"--target: min_scale {found:g}", root / "scale", found, "scale")] if found is not None else []),
        ("bias (0.5, 10)", root / "bias", 0.5, "bias"),
        ("lower (0.5, 10)", root / "lower", 0.5, "lower"),  # sampling columns only, unless run there too
    ]
    print("| setting | " + " | ".join(title for _, title in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for label, directory, min_scale, mode in rows:
        cells = cells_at(directory, min_scale)
        cells |= cells_at(root / ("ko-mc" if mode == "scale" else f"ko-mc-{mode}"), min_scale)
        for temperature in ("0.7", "1.0"):
            cells |= cells_at(root / f"sampling-{temperature}-{mode}", min_scale, f"@{temperature}")
        print(f"| {label} | " + " | ".join(cells.get(key, "") for key, _ in COLUMNS) + " |")
    larger = root / "humaneval-1.5b"  # make quality-1.5b
    if (larger / "runs.jsonl").is_file():
        print("\n| Qwen2.5-Coder-1.5B-Instruct | HumanEval pass@1 |\n|---|---|")
        for label, min_scale in (("base", 1.0), ("default (0.5, 10)", 0.5)):
            print(f"| {label} | {cells_at(larger, min_scale).get('pass@1:humaneval', '')} |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/quality"))
