#!/usr/bin/env python3
"""Generates the shipped town, assets/maps/maple_hollow.tmj, and its tileset image.

The output is an ordinary Tiled map (JSON, .tmj): open it in Tiled to edit it by hand. This
script exists so the shipped town can be rebuilt reproducibly; edits made in Tiled are fine too.

Layers (what the server reads; see docs/maps.md):
  ground     tile layer, looks only
  collision  tile layer, any non-zero tile blocks walking
  sectors    object layer, one rectangle per building or open area
  arenas     object layer, one rectangle per room, each inside one sector
  objects    object layer, one rectangle per thing agents use, each inside one arena
"""
import json
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TILE = 16
W, H = 120, 64
GRASS, ROAD, WALL, FLOOR, WATER = 1, 2, 3, 4, 5
COLORS = {GRASS: (106, 170, 100), ROAD: (170, 160, 140), WALL: (90, 70, 60),
          FLOOR: (210, 190, 150), WATER: (70, 120, 200)}

ground = [[GRASS] * W for _ in range(H)]
collision = [[0] * W for _ in range(H)]
sectors, arenas, objects = [], [], []


def rect(name, x, y, w, h):
    return {"name": name, "x": x, "y": y, "w": w, "h": h}


def building(name, x, y, w, h, door, rooms):
    """A walled building split into rooms (arenas) of equal width, left to right, by walls with a
    doorway near the entrance side. rooms: [(arena, [objects])]; door: 'top' or 'bottom'."""
    sectors.append(rect(name, x, y, w, h))
    for yy in range(y, y + h):
        for xx in range(x, x + w):
            edge = yy in (y, y + h - 1) or xx in (x, x + w - 1)
            ground[yy][xx] = WALL if edge else FLOOR
            collision[yy][xx] = WALL if edge else 0
    n = len(rooms)
    room_w = (w - 2 - (n - 1)) // n
    assert room_w >= 3, f"{name}: rooms too narrow"
    inner_x = x + 1
    gap_row = y + h - 2 if door == "bottom" else y + 1
    far_row = y + 2 if door == "bottom" else y + h - 3
    step = 1 if door == "bottom" else -1
    for i, (arena, things) in enumerate(rooms):
        last = i == n - 1
        width = x + w - 1 - inner_x if last else room_w
        arenas.append(rect(arena, inner_x, y + 1, width, h - 2))
        if i == n // 2:  # front door into the middle room
            dx = inner_x + width // 2
            dy = y + h - 1 if door == "bottom" else y
            ground[dy][dx], collision[dy][dx] = FLOOR, 0
        for j, thing in enumerate(things):
            ox = inner_x + (2 * j) % width
            oy = far_row + step * 2 * ((2 * j) // width)
            objects.append(rect(thing, ox, oy, 1, 1))
        if not last:
            wx = inner_x + width
            for yy in range(y + 1, y + h - 1):
                ground[yy][wx], collision[yy][wx] = WALL, WALL
            ground[gap_row][wx], collision[gap_row][wx] = FLOOR, 0
            inner_x = wx + 1


house = building

BED = ["bed", "wardrobe"]
KITCHEN = ["stove", "dining table"]
LIVING = ["sofa", "bookshelf"]

# Main street and the river.
for yy in range(27, 30):
    for xx in range(W):
        ground[yy][xx] = ROAD
for xx in range(W):
    for yy in range(H - 4, H):
        ground[yy][xx], collision[yy][xx] = WATER, WATER

# North row of homes, doors facing the lane below them.
house("Alvarez House", 2, 3, 20, 10, "bottom", [("main bedroom", BED), ("second bedroom", ["bed", "desk"]), ("kitchen", KITCHEN), ("living room", LIVING)])
house("Okafor House", 23, 3, 20, 10, "bottom", [("main bedroom", BED), ("second bedroom", ["bed", "desk"]), ("kitchen", KITCHEN), ("living room", LIVING)])
house("Lindqvist House", 44, 3, 18, 10, "bottom", [("bedroom", BED), ("kitchen", KITCHEN), ("living room", LIVING), ("study", ["writing desk"])])
house("Nakamura House", 63, 3, 18, 10, "bottom", [("bedroom", BED), ("kitchen", KITCHEN), ("living room", LIVING), ("studio", ["easel", "paint table"])])
house("Brennan House", 82, 3, 14, 10, "bottom", [("bedroom", BED), ("kitchen", KITCHEN), ("living room", LIVING)])
house("Haddad House", 97, 3, 14, 10, "bottom", [("bedroom", BED), ("kitchen", KITCHEN), ("living room", LIVING)])
# Second row, doors facing the main street.
house("Kowalski House", 2, 15, 14, 10, "bottom", [("bedroom", BED), ("kitchen", KITCHEN), ("living room", LIVING)])
house("Reyes House", 17, 15, 14, 10, "bottom", [("bedroom", BED), ("kitchen", KITCHEN), ("living room", ["sofa", "workbench"])])
house("Price Cottage", 32, 15, 14, 10, "bottom", [("bedroom", BED), ("kitchen", KITCHEN), ("living room", LIVING)])
building("Maple Hill Dormitory", 47, 15, 28, 10, "bottom", [("room 1", ["bed", "desk"]), ("room 2", ["bed", "desk"]), ("common room", ["sofa", "kitchenette"]), ("room 3", ["bed", "desk"]), ("room 4", ["bed", "desk"])])
building("Artists' Loft", 76, 15, 24, 10, "bottom", [("room A", ["bed", "desk"]), ("room B", ["bed", "desk"]), ("shared studio", ["piano", "workbench"]), ("room C", ["bed", "desk"]), ("kitchen", KITCHEN)])
building("Maple Hill College", 101, 15, 18, 10, "bottom", [("classroom", ["blackboard", "student desk", "lectern"]), ("library", ["bookshelf", "reading table"]), ("faculty office", ["office desk"])])
# South of the main street: the town's public places, doors facing the street.
building("Willow Cafe", 2, 31, 20, 12, "top", [("cafe", ["counter", "coffee machine", "cafe table"]), ("kitchen", ["stove", "sink"])])
building("Elm Street Market", 24, 31, 20, 12, "top", [("store", ["shelves", "checkout counter"]), ("stockroom", ["crates"])])
building("Copper Kettle Bar", 46, 31, 16, 12, "top", [("bar", ["bar counter", "pool table", "bar table", "stage"])])
building("Town Hall", 64, 31, 28, 12, "top", [("council chamber", ["podium", "public bench"]), ("clerk's office", ["clerk desk", "filing cabinet"]), ("mayor's office", ["mayor desk"])])
# Riverside Park: open ground by the river.
sectors.append(rect("Riverside Park", 10, 46, 90, 13))
arenas.append(rect("park", 10, 46, 90, 13))
objects += [rect("bench", 24, 50, 1, 1), rect("fountain", 52, 52, 1, 1), rect("flower garden", 76, 49, 3, 2)]


def tile_layer(lid, name, grid):
    return {"id": lid, "name": name, "type": "tilelayer", "x": 0, "y": 0, "width": W, "height": H,
            "opacity": 1, "visible": True, "data": [v for row in grid for v in row]}


next_id = 1


def object_layer(lid, name, items):
    global next_id
    out = []
    for it in items:
        out.append({"id": next_id, "name": it["name"], "type": "", "x": it["x"] * TILE, "y": it["y"] * TILE,
                    "width": it["w"] * TILE, "height": it["h"] * TILE, "rotation": 0, "visible": True})
        next_id += 1
    return {"id": lid, "name": name, "type": "objectgroup", "draworder": "topdown", "x": 0, "y": 0,
            "opacity": 1, "visible": True, "objects": out}


layers = [tile_layer(1, "ground", ground), tile_layer(2, "collision", collision),
          object_layer(3, "sectors", sectors), object_layer(4, "arenas", arenas),
          object_layer(5, "objects", objects)]
tmj = {"type": "map", "version": "1.10", "tiledversion": "1.10.2", "orientation": "orthogonal",
       "renderorder": "right-down", "width": W, "height": H, "tilewidth": TILE, "tileheight": TILE,
       "infinite": False, "compressionlevel": -1, "nextlayerid": 6, "nextobjectid": next_id,
       "properties": [{"name": "world", "type": "string", "value": "Maple Hollow"}],
       "tilesets": [{"firstgid": 1, "name": "basic", "image": "../tilesets/basic.png", "imagewidth": TILE * 5,
                     "imageheight": TILE, "tilewidth": TILE, "tileheight": TILE, "tilecount": 5, "columns": 5,
                     "margin": 0, "spacing": 0}],
       "layers": layers}
(ROOT / "assets/maps").mkdir(parents=True, exist_ok=True)
(ROOT / "assets/maps/maple_hollow.tmj").write_text(json.dumps(tmj, indent=1) + "\n")


def png(path, width, height, pixel):
    raw = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def tile_pixel(x, y):
    r, g, b = COLORS[x // TILE + 1]
    shade = 12 if (x % TILE in (0, TILE - 1) or y in (0, TILE - 1)) else 0
    return (max(0, r - shade), max(0, g - shade), max(0, b - shade))


(ROOT / "assets/tilesets").mkdir(parents=True, exist_ok=True)
png(ROOT / "assets/tilesets/basic.png", TILE * 5, TILE, tile_pixel)
print(f"wrote maple_hollow.tmj: {W}x{H} tiles, {len(sectors)} sectors, {len(arenas)} arenas, {len(objects)} objects")
