from django.urls import path

from rivya_dashboard.chat import views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("new", views.chat_new, name="chat-new"),
    path("remote/", views.remote_list, name="chat-remote"),
    path("remote/continue", views.remote_continue, name="chat-remote-continue"),
    path("<int:pk>/", views.chat_session, name="chat-session"),
    path("<int:pk>/send", views.chat_send, name="chat-send"),
    path("<int:pk>/export.<str:fmt>", views.chat_export, name="chat-export"),
    path("turns/<int:pk>/", views.turn_detail, name="chat-turn"),
    path("turns/<int:pk>/stream", views.turn_stream, name="chat-turn-stream"),
    path("turns/<int:pk>/stop", views.turn_stop, name="chat-turn-stop"),
    path("turns/<int:pk>/regenerate", views.turn_regenerate, name="chat-turn-regenerate"),
]
