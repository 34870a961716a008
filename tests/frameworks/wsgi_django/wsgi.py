"""The WSGI callable, as startproject writes it."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.frameworks.wsgi_django.settings")

application = get_wsgi_application()
