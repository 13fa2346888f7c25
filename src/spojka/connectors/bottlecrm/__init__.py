"""BottleCRM (django-crm 1.35): REST client, signed webhooks and the connector."""
