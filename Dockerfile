# cargohold: one image for every replica. Configure it with CARGOHOLD_* variables.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 cargohold
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir . && rm -rf /root/.cache
USER cargohold
ENV CARGOHOLD_HOST=0.0.0.0 CARGOHOLD_PORT=5000 CARGOHOLD_DATA_DIR=/var/lib/cargohold
EXPOSE 5000
ENTRYPOINT ["cargohold"]
CMD ["serve"]
