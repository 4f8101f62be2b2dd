//! Marathon's model: app definitions, placement of instances on offers, and deployment plans.
