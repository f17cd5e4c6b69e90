"""ASGI entry point: cunicorn -k asgi djangoapp.asgi (from examples/djangoapp)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoapp.settings")

application = get_asgi_application()
