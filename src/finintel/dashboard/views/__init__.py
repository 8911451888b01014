"""The dashboard's pages: each module is a Streamlit page script run by `app.py`."""
