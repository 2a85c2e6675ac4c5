"""Names that vulture reports as unused but that are used, each group with the reason it stays.

`scripts/test.sh` runs `python -m vulture src benchmarks vulture_whitelist.py --min-confidence 60`.
Vulture only parses this file; it is never imported or run.
"""

from typing import Any

from cryoscape import model
from cryoscape.analysis.states import StateChoice
from cryoscape.analysis.traverse import GraphPath, LatentGraph
from cryoscape.dashboard.server import DashboardServer, Handler
from cryoscape.fourier import ctf
from cryoscape.io import safe_pickle
from cryoscape.model import ReconModel
from cryoscape.recon.backproject import backproject
from cryoscape.viz.isosurface import Mesh

mrc_file: Any = None  # an open mrcfile.MrcFile

_whitelist = [
    # result dataclass fields, read by callers and tests (links per node, the steps of a path,
    # the mixture's state means)
    LatentGraph.degree,
    GraphPath.step_lengths,
    StateChoice.means,
    # http.server hooks and settings, called or read by the standard library
    Handler.protocol_version,
    Handler.log_message,
    Handler.do_GET,
    Handler.do_POST,
    Handler.close_connection,
    DashboardServer.daemon_threads,
    DashboardServer.address_family,
    # pickle.Unpickler hook, called by pickle: refuses persistent ids
    safe_pickle._Restricted.persistent_load,
    # mrcfile header fields set on every map written (other programs read them)
    mrc_file.header.nxstart,
    mrc_file.header.nystart,
    mrc_file.header.nzstart,
    # PEP 562 module __getattr__, called by Python: the lazy names of cryoscape.model
    model.__getattr__,
    # the named column order that docstrings refer to (:data:`CTF_COLUMNS`)
    ctf.CTF_COLUMNS,
    # library API for notebooks that the commands do not call (tests do): a run's map for one z
    # (docs/outputs.md), an unsplit reconstruction, the reader of the mesh JSON reports embed
    ReconModel.eval_volume,
    backproject,
    Mesh.from_json,
]
