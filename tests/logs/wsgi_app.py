"""``gunicorn tests.logs.wsgi_app:app``"""

import llmobs
from tests.logs.apps import PRINCIPAL_KEY, flask_app

llmobs.init(service_name="logs-wsgi", principal_key=PRINCIPAL_KEY)
app = flask_app()
