#!/bin/sh
echo "$GREETING"
cat /etc/build-info
