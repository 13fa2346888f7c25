"""Tryton 8.2 over JSON-RPC: the ERP, CRM (sale_opportunity) and project/timesheet system."""
