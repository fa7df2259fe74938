"""Which patches a token-removal method keeps: on the object, or anywhere?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssl_bench.evaluators import EvalContext, pct
from ssl_bench.registry import EVALUATORS


def summary(ev: dict[str, Any]) -> list[tuple[str, str]]:
    r = ev["removal"]
    return [
        (
            "kept patches on the object",
            f"attention {pct(r['attention'])}, random {pct(r['random'])} "
            f"(all patches {pct(r['all_patches'])})",
        )
    ]


@EVALUATORS.register(
    "removal",
    "fraction of kept patches on the object, attention vs random removal (token removal)",
    order=80,
    needs=("token_removal", "masks"),
    summary=summary,
)
def run(ctx: EvalContext) -> dict[str, Any]:
    from ssl_bench.eval.removal import removal_overlap, save_figures

    d = ctx.data
    out, attention, kept = removal_overlap(
        ctx.method, d.test.images, d.test.masks, ctx.views, ctx.device, seed=ctx.cfg.train.seed
    )
    if ctx.out_dir is not None:
        figures = save_figures(ctx.out_dir / "removal", d.test.images, attention, kept)
        out["figures"] = [str(Path(f).relative_to(ctx.out_dir)) for f in figures]
    return {"removal": out}
