"""Every JSON response carries a RequestId, as PAI's do (the SDKs print it with errors).

PAI's GetDatasetFileMetasStatistics spells it ``requestId``: a body that already has that key
gets it filled instead of a second spelling.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import JSONResponse

REQUEST_ID_HEADER = "x-acs-request-id"


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


class PaiJSONResponse(JSONResponse):
    def __init__(self, content: Any, *args: Any, **kwargs: Any):
        self.request_id = new_request_id()
        super().__init__(content, *args, **kwargs)
        self.headers[REQUEST_ID_HEADER] = self.request_id

    def render(self, content: Any) -> bytes:
        if isinstance(content, dict):
            if "requestId" in content:
                content = {**content, "requestId": content["requestId"] or self.request_id}
            else:
                content = {"RequestId": self.request_id, **content}
        return super().render(content)
