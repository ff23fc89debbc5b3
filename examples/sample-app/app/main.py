"""A tiny web app that the example Image copies into /home/daytona/app."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "Hello from a Cairn snapshot!\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8000)
