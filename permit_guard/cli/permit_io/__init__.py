"""``permit-guard export`` and ``policy import``: a server and a local policy, in Permit.io's terms.

:func:`build_export` gathers what Permit.io needs (:mod:`.records`), from the
server's requests (:mod:`.schema`) and the policy's model (:mod:`.access`) and
facts (:mod:`.directory`), after checking Permit.io's rules for keys
(:mod:`.keys`); :func:`api_json` and :func:`terraform` write it as API
requests (:mod:`.endpoints`) or as Terraform; :func:`import_policy` reads the
API requests back into a local policy (:mod:`.importing`).
"""

from permit_guard.cli.permit_io.api_json import api_json
from permit_guard.cli.permit_io.building import ExportError, build_export
from permit_guard.cli.permit_io.endpoints import ENDPOINTS, MODELS
from permit_guard.cli.permit_io.terraform import terraform

__all__ = ["ENDPOINTS", "MODELS", "ExportError", "api_json", "build_export", "terraform"]
