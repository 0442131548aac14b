"""``uvicorn tests.logs.asgi_app:app``"""

import llmobs
from tests.logs.apps import PRINCIPAL_KEY, fastapi_app

llmobs.init(service_name="logs-asgi", principal_key=PRINCIPAL_KEY)
app = fastapi_app()
