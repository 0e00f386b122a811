# Environment of the benchmark server (sourced by serve.sh, reset.sh and the runners).
export DEBUG=false SECRET_KEY=bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-0123
export ALLOWED_HOSTS="127.0.0.1 localhost" SECURE_SSL_REDIRECT=false
export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lightbox_bench}
export REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/2} CACHE_KEY_PREFIX=bench
export MEDIA_ROOT=/tmp/lightbox-bench/media LIGHTBOX_STAGING_DIR=/tmp/lightbox-bench/staging
export LIGHTBOX_MAX_FILE_BYTES=400000000 JWT_ACCESS_MINUTES=600 LOG_LEVEL=WARNING
export THROTTLE_USER=100000000/hour THROTTLE_UPLOADS=100000000/hour THROTTLE_ANON=100000000/hour
export DB_CONN_MAX_AGE=0 DB_POOL=true DB_SERVER_SIDE_BINDING=true  # a pool shared by the request threads; prepared statements
