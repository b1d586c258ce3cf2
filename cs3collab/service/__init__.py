"""The collaboration service: rooms, journal, persistence, access policy, federation endpoint."""
