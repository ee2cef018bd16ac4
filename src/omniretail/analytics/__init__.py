"""Insight: KPIs, cohorts, RFM, customer lifetime value, forecasting, replenishment."""
