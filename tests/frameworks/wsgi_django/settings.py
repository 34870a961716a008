"""The project's settings: startproject's middleware, no database."""

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.frameworks.wsgi_django.urls"
WSGI_APPLICATION = "tests.frameworks.wsgi_django.wsgi.application"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.messages"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
# Uploads past this are spooled to a temporary file, as a real project's large ones are.
FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
