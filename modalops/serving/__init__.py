"""The served model: the MLflow pyfunc and its signature, both built from the model's dataset spec.

Submodules are imported where needed (`serving.pyfunc` pulls in mlflow).
"""
