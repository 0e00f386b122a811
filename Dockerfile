# Lightbox image: one image for the web process, the task worker and the DICOM SCP.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN DEBUG=false SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && useradd --system --home /app lightbox \
    && mkdir -p /app/var && chown -R lightbox /app/var
USER lightbox

EXPOSE 8000 11112
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
