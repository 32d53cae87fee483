"""What the console reads the moment a key is stored: the model catalogue and the key's balance.

The vault sends key_added after the Keys form, "Use the sandbox" and `manage.py add_key` (it
imports no console code), so each of them ends with Models, Generate, Chat, Credits and Home
filled instead of "add a key" or "no balance read yet". Each read gets READ_TIMEOUT and no retry
inside the request; what the API does not answer in time is left to the worker, which reads it
again with the usual timeouts and retries.
"""

import logging

from rivya_dashboard.accounts.models import User
from rivya_dashboard.console import credits, models_catalog
from rivya_dashboard.console.models import CatalogueSync
from rivya_dashboard.console.tasks import refresh_catalogue
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault.models import ApiKey

logger = logging.getLogger(__name__)

# (connect, read) for the reads made inside the request that added the key.
READ_TIMEOUT = (3.05, 5.0)


def on_key_added(sender: type, *, key: ApiKey, actor: User | None, **kwargs: object) -> None:
    client = key.client()
    client.timeout, client.max_retries = READ_TIMEOUT, 0
    if models_catalog.is_wanted(CatalogueSync.current()):
        try:
            models_catalog.do_refresh(key, actor, client=client)
        except RivyaError as exc:
            logger.warning("Catalogue not read after adding key %s: %s", key.pk, exc.code)
            refresh_catalogue.enqueue()
    reading = credits.do_read_balance(key, actor, client=client)
    if reading.failed:
        credits.read_balance.enqueue(key.pk)
