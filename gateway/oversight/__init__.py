"""What administrators see and do beyond editing rows: live connections across every
process (and disconnecting a subject), and checking what a user or a claim set may access.

Admin pages under ``/admin/live/`` and ``/admin/access/`` (``gateway.oversight.urls``),
for staff with the ``gateway.view_live_sockets``, ``gateway.disconnect_sockets`` and
``gateway.check_access`` permissions (the ``gateway-staff`` group has them).
"""
