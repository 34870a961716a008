"""A small Django project served over WSGI (``tests/test_wsgi_frameworks.py``), laid out
as ``django-admin startproject`` lays one out: ``settings``, ``urls`` (with the views)
and ``wsgi``. It runs in the server's own process: ``DJANGO_SETTINGS_MODULE`` names
its settings, so it never meets the ASGI project of ``tests/frameworks/django_app.py``."""
