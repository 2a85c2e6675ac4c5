"""Training: configs (:mod:`.config`), the loss (:mod:`.objective`), the one loop (:mod:`.loop`),
the output folder (:mod:`.outdir`) and its files (:mod:`.checkpoint`); see docs/outputs.md."""
