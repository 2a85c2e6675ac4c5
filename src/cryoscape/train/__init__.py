"""Training: configs (:mod:`.config`), the loss (:mod:`.objective`), the one loop (:mod:`.loop`),
the output folder (:mod:`.outdir`) and its files (:mod:`.checkpoint`); a whole run from plain
settings, as the command does it (:mod:`.run`); see docs/outputs.md."""
