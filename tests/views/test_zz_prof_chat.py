import time
from django.db import connection
from django.test.utils import CaptureQueriesContext
from tests.views.test_chat import *  # noqa
from tests.views.test_chat import shared_file_database  # noqa

def test_prof(clients, chat_ready):
    client = clients[Role.OPERATOR]
    start_chat(client, chat_ready)
    turn = ChatTurn.objects.get()
    read_stream(client, turn)
    url = reverse("chat-send", args=[turn.session_id])
    with CaptureQueriesContext(connection) as q:
        r = client.post(url, {"message": "hi", "idempotency_key": "k1"}, HTTP_HX_REQUEST="true")
    for x in q.captured_queries: print("Q", x["sql"][:160])
    read_stream(client, ChatTurn.objects.get(idempotency_key="k1"))
