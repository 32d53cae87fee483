"""The sandbox's URL namespace; the emulator's routes are added here."""

urlpatterns: list = []
