//! Marathon placement constraints (`["hostname","UNIQUE"]`, `GROUP_BY`, `LIKE`, ...).
