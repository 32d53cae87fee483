"""The API workbench: an explorer built from the API's own OpenAPI document, the inspector of
every call the console made, and saved requests."""
