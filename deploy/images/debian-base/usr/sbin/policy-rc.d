#!/bin/sh
# No daemon starts while a package is installed in an image build.
exit 101
