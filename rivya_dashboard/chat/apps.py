from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "rivya_dashboard.chat"
    label = "chat"
